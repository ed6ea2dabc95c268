/**
 * Import the user's agents module and number its definitions. Every thread does this
 * with the same URL; the host compares fingerprints so a thread that somehow loaded
 * a different module (a file edited mid-start) fails at startup, not with misrouted
 * method indices later.
 */
import { AgentRegistry } from '../../native-free-core/agent/registry.ts'
import { InvalidOptionError, ShoalError, messageOf } from '../../native-free-core/errors.ts'

export async function loadRegistry (url: string): Promise<AgentRegistry> {
  let namespace: Record<string, unknown>
  try {
    namespace = await import(url) as Record<string, unknown>
  } catch (err) {
    throw new InvalidOptionError('agents', url, `could not be imported: ${messageOf(err)}`)
  }
  let registry: AgentRegistry
  try {
    registry = AgentRegistry.fromModule(namespace)
  } catch (err) {
    if (err instanceof ShoalError) throw err
    throw new InvalidOptionError('agents', url, `has invalid definitions: ${messageOf(err)}`)
  }
  if (registry.types.length === 0) {
    throw new InvalidOptionError('agents', url, 'exports no agent definitions (export the results of defineAgent)')
  }
  return registry
}
