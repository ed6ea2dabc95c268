import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as errors from '../../native-free-core/errors.ts'

const { ShoalError, TimeoutError, AgentError, WorkerCrashedError, AbortedError, errorFromWire, errorCodes } = errors

test('every error class has its own stable code and survives the wire by code', () => {
  const classes = Object.values(errors).filter((v): v is typeof ShoalError => typeof v === 'function' && (v === ShoalError || v.prototype instanceof ShoalError))
  assert.ok(classes.length >= 17)
  const codes = new Set<string>()
  for (const cls of classes) {
    assert.match(cls.code, /^SHOAL_ERR(_[A-Z_]+)?$/)
    assert.ok(!codes.has(cls.code), `duplicate code ${cls.code}`)
    codes.add(cls.code)
    assert.ok(errorCodes.includes(cls.code), `${cls.name} registered`)
    const rebuilt = errorFromWire({ code: cls.code, message: 'm', data: { x: 1 } })
    assert.ok(rebuilt instanceof cls, `${cls.name} rebuilt by code`)
    assert.ok(rebuilt instanceof ShoalError)
    assert.ok(rebuilt instanceof Error)
    assert.equal(rebuilt.code, cls.code)
    assert.equal(rebuilt.message, 'm')
    assert.deepEqual(rebuilt.data, { x: 1 })
  }
})

test('instanceof a subclass checks the code, not just the brand', () => {
  const t = new TimeoutError('slow')
  assert.ok(t instanceof TimeoutError)
  assert.ok(t instanceof ShoalError)
  assert.ok(!(t instanceof AgentError))
  assert.equal(t.retriable, true)
  assert.equal(new WorkerCrashedError('x').retriable, true)
  assert.equal(new AgentError('x').retriable, false)
  assert.equal(new AbortedError().name, 'AbortError')
  // a plain object is never an error of ours
  assert.ok(!({ code: 'SHOAL_ERR_TIMEOUT' } instanceof TimeoutError))
})

test('unknown codes from a newer peer become a ShoalError that keeps the code', () => {
  const e = errorFromWire({ code: 'SHOAL_ERR_FROM_THE_FUTURE', message: 'hi' })
  assert.ok(e instanceof ShoalError)
  assert.equal(e.code, 'SHOAL_ERR_FROM_THE_FUTURE')
})

test('InvalidOptionError names the option, the rule and the value', () => {
  const e = new errors.InvalidOptionError('workers', -1, 'must be an integer from 0 to 254')
  assert.equal(e.message, 'options.workers must be an integer from 0 to 254 (got -1)')
  assert.deepEqual(e.data, { option: 'workers', value: -1 })
})
