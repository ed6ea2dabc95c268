/**
 * Where a host is in its life, shared by the parts that must stop at the right moment:
 * routing refuses new calls once `stopping`; worker supervision stops restarting, and the
 * offload relay stops answering, once `closed`.
 */
export class HostLifecycle {
  /** `close()` has begun (or `start()` failed): new calls, casts, follows and listings are refused. */
  stopping = false
  /** In-flight work has drained (or timed out) and the workers are being stopped: no restarts. */
  closed = false
}
