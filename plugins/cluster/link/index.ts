/**
 * Cluster links: authenticated, batched WebSocket links between the hosts of a cluster
 * (docs/cluster.md). The cluster plugin creates one LinkHub per host.
 */
export { LinkHub, type LinkHubOptions, type LinkHubEvents, type LinkHubStats, type LinkDown } from './link-hub.ts'
export type { LinkPeerStats, LinkState } from './peer.ts'
export type { BatchWriter, FrameSink, FrameTarget } from './batch-writer.ts'
export type { Hello, HelloCheck } from './handshake.ts'
export { MIN_SECRET_BYTES } from './handshake.ts'
export type { RefusalReason, LinkLogger } from './refusals.ts'
export { ALLOW_UWS_FALLBACK_ENV, nativeUwsLoaded } from './native-uws.ts'
export { LINK_PATH, LINK_PROTOCOL } from './wire.ts'
