'use strict'
// meshka's client-matrix scenario (test/clients_matrix_test.go) with kafkajs:
//
//   (a) 300 records over 3 partitions, consumed in a consumer group that
//       commits what it read; the group's offsets are then the end offsets;
//   (b) one transactional producer: commit (A), abort (B, acknowledged
//       before the abort so it is in the log), then a consume-transform-
//       produce commit (C) with sendOffsets of the input group;
//   (c) a read_committed consumer of the output sees exactly A then C in
//       every partition, and the input group's offsets are the input's end.
//
// Usage: KAFKA_BROKERS=host:port[,host:port] node matrix.js
// MATRIX_PREFIX names the topics, groups and transactional id (default
// kafkajs-<time>); MATRIX_TIMEOUT_MS bounds the whole run (default 60000).
// Exits 0 when every check passed, 1 with a FAIL line on the first mismatch
// or error.

const { Kafka, logLevel } = require('kafkajs')

const PARTS = 3
const PLAIN = 100 // records per partition in (a)
const TXN = 10 // records per partition in A, B and the input
const SENTINEL = 'end'

const brokers = (process.env.KAFKA_BROKERS || '').split(',').filter(Boolean)
const prefix = process.env.MATRIX_PREFIX || `kafkajs-${Date.now()}`
const timeoutMs = Number(process.env.MATRIX_TIMEOUT_MS || 60000)
const names = {
  plain: `${prefix}-plain`,
  group: `${prefix}-grp`,
  in: `${prefix}-in`,
  out: `${prefix}-out`,
  etl: `${prefix}-etl`,
  verify: `${prefix}-verify`,
  txid: `${prefix}-txn`,
}

let step = 'start'
const log = msg => console.log(`kafkajs matrix: ${msg}`)

class Mismatch extends Error {}

// describe names a kafkajs error with what the protocol said.
function describe(e) {
  const parts = [`${e.name || 'Error'}: ${e.message}`]
  if (e.type) parts.push(`type ${e.type}`)
  if (e.code !== undefined) parts.push(`code ${e.code}`)
  let cause = e.originalError || e.cause
  while (cause) {
    parts.push(`caused by ${cause.name || 'Error'}: ${cause.message}${cause.type ? ` (type ${cause.type})` : ''}`)
    cause = cause.originalError || cause.cause
  }
  return parts.join('; ')
}

function fail(msg) {
  console.error(`kafkajs matrix: FAIL in ${step}: ${msg}`)
  process.exit(1)
}

// records is n per partition valued tag-<partition>-<i>.
function records(tag, n) {
  const out = []
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < PARTS; p++) out.push({ partition: p, value: `${tag}-${p}-${i}` })
  }
  return out
}

function byPartition(recs) {
  const out = {}
  for (let p = 0; p < PARTS; p++) out[p] = []
  for (const r of recs) out[r.partition].push(r.value)
  return out
}

// checkPartitions throws unless got has exactly want's values, in order, in
// every partition, naming aborted records, duplicates and missing ones.
function checkPartitions(what, got, want) {
  const problems = []
  for (let p = 0; p < PARTS; p++) {
    const g = got[p] || []
    const w = want[p]
    if (g.length === w.length && g.every((v, i) => v === w[i])) continue
    const seen = new Map()
    for (const v of g) seen.set(v, (seen.get(v) || 0) + 1)
    const why = []
    const aborted = g.filter(v => v.startsWith('B-'))
    if (aborted.length) why.push(`${aborted.length} records of the aborted transaction ${JSON.stringify(aborted)}`)
    const dups = [...seen].filter(([, k]) => k > 1).map(([v, k]) => `${v} x${k}`)
    if (dups.length) why.push(`duplicates ${JSON.stringify(dups)}`)
    const missing = w.filter(v => !seen.has(v))
    if (missing.length) why.push(`missing ${JSON.stringify(missing)}`)
    if (!why.length) why.push('out of order')
    problems.push(`partition ${p}: ${why.join('; ')}\n got ${JSON.stringify(g)}\nwant ${JSON.stringify(w)}`)
  }
  for (const p of Object.keys(got)) {
    if (!(p in want)) problems.push(`partition ${p}: unexpected records ${JSON.stringify(got[p])}`)
  }
  if (problems.length) throw new Mismatch(`${what}:\n${problems.join('\n')}`)
}

// checkGroupSettles is checkGroupAtEnd for offsets committed in a
// transaction, which Kafka makes visible once the transaction's markers are
// written, after EndTxn answered: a mismatch is asked again until they
// show, bounded only by the script's own timeout.
async function checkGroupSettles(admin, groupId, topic, perPart) {
  for (;;) {
    try {
      return await checkGroupAtEnd(admin, groupId, topic, perPart)
    } catch (e) {
      if (!(e instanceof Mismatch)) throw e
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
}

// checkGroupAtEnd throws unless the group's committed offsets on topic are
// the end offsets, perPart in every partition.
async function checkGroupAtEnd(admin, groupId, topic, perPart) {
  const ends = await admin.fetchTopicOffsets(topic)
  const end = {}
  for (const o of ends) end[o.partition] = o.high
  for (let p = 0; p < PARTS; p++) {
    if (end[p] !== String(perPart)) {
      throw new Mismatch(`${topic}: end offsets ${JSON.stringify(end)}, want ${perPart} in each of ${PARTS} partitions`)
    }
  }
  const [res] = await admin.fetchOffsets({ groupId, topics: [topic] })
  const committed = {}
  for (const o of res.partitions) committed[o.partition] = o.offset
  for (let p = 0; p < PARTS; p++) {
    if (committed[p] !== end[p]) {
      throw new Mismatch(`group ${groupId}: committed offsets on ${topic} ${JSON.stringify(committed)}, want the end offsets ${JSON.stringify(end)}`)
    }
  }
}

// consumeGroup runs a consumer in groupId on topic until n records arrived
// and resolves with the running consumer, the values by partition and the
// last offset read by partition. Nothing is committed.
async function consumeGroup(kafka, groupId, topic, n) {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 6000,
    heartbeatInterval: 500,
    rebalanceTimeout: 10000,
    maxWaitTimeInMs: 250,
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const got = byPartition([])
  const last = {}
  let read = 0
  await new Promise((resolve, reject) => {
    consumer.on(consumer.events.CRASH, ({ payload }) => reject(payload.error))
    consumer
      .run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          got[partition].push(message.value.toString())
          last[partition] = message.offset
          if (++read === n) resolve()
        },
      })
      .catch(reject)
  })
  return { consumer, got, last }
}

// nextOffsets is what a group commits after reading up to last: the offset
// after each partition's last record.
function nextOffsets(last) {
  return Object.keys(last).map(p => ({ partition: Number(p), offset: String(Number(last[p]) + 1) }))
}

async function main() {
  if (!brokers.length) fail('KAFKA_BROKERS is not set')
  const timer = setTimeout(() => fail(`not done after ${timeoutMs} ms`), timeoutMs)
  const kafka = new Kafka({
    clientId: 'meshka-matrix-kafkajs',
    brokers,
    logLevel: logLevel.ERROR,
    retry: { retries: 5 },
  })
  const admin = kafka.admin()
  await admin.connect()
  const producer = kafka.producer()
  await producer.connect()

  step = 'create topics'
  await admin.createTopics({
    waitForLeaders: true,
    topics: [names.plain, names.in, names.out].map(topic => ({ topic, numPartitions: PARTS })),
  })

  step = '(a) produce'
  const plain = records('a', PLAIN)
  await producer.send({ topic: names.plain, messages: plain })
  log(`(a) produced ${plain.length} records to ${names.plain}`)

  step = '(a) consume in a group'
  const a = await consumeGroup(kafka, names.group, names.plain, plain.length)
  await a.consumer.commitOffsets(nextOffsets(a.last).map(o => ({ topic: names.plain, ...o })))
  await a.consumer.disconnect()
  checkPartitions(`(a) group ${names.group} consumed`, a.got, byPartition(plain))
  await checkGroupAtEnd(admin, names.group, names.plain, PLAIN)
  log(`(a) group ${names.group} consumed and committed ${plain.length} records`)

  step = '(b) input'
  const inputs = records('in', TXN)
  await producer.send({ topic: names.in, messages: inputs })

  const txnProducer = kafka.producer({ transactionalId: names.txid, idempotent: true, maxInFlightRequests: 1 })
  await txnProducer.connect()

  step = '(b) transaction A (commit)'
  const recsA = records('A', TXN)
  let txn = await txnProducer.transaction()
  await txn.send({ topic: names.out, messages: recsA })
  await txn.commit()
  log('(b) transaction A committed')

  step = '(b) transaction B (abort)'
  txn = await txnProducer.transaction()
  // send resolves once the records are acknowledged: they are in the log.
  await txn.send({ topic: names.out, messages: records('B', TXN) })
  await txn.abort()
  log('(b) transaction B aborted')

  step = '(b) consume the input'
  // The consumer stays in the group while the transaction carries its
  // offsets, as in a processing loop.
  const etl = await consumeGroup(kafka, names.etl, names.in, inputs.length)
  const [before] = await admin.fetchOffsets({ groupId: names.etl, topics: [names.in] })
  const early = before.partitions.filter(o => o.offset !== '-1')
  if (early.length) throw new Mismatch(`group ${names.etl} has committed offsets ${JSON.stringify(early)} before the transaction that sends them`)

  step = '(b) transaction C (commit with sendOffsets)'
  const recsC = []
  for (let p = 0; p < PARTS; p++) {
    for (const v of etl.got[p]) recsC.push({ partition: p, value: `C-${v}` })
  }
  txn = await txnProducer.transaction()
  await txn.send({ topic: names.out, messages: recsC })
  await txn.sendOffsets({
    consumerGroupId: names.etl,
    topics: [{ topic: names.in, partitions: nextOffsets(etl.last) }],
  })
  await txn.commit()
  await etl.consumer.disconnect()
  await txnProducer.disconnect()
  log(`(b) transaction C committed with the offsets of ${names.etl}`)

  step = '(c) read_committed'
  await producer.send({
    topic: names.out,
    messages: [...Array(PARTS).keys()].map(p => ({ partition: p, value: SENTINEL })),
  })
  const verify = kafka.consumer({ groupId: names.verify, readUncommitted: false, maxWaitTimeInMs: 250 })
  await verify.connect()
  await verify.subscribe({ topics: [names.out], fromBeginning: true })
  const got = byPartition([])
  const after = []
  const ends = new Set()
  await new Promise((resolve, reject) => {
    verify.on(verify.events.CRASH, ({ payload }) => reject(payload.error))
    verify
      .run({
        eachMessage: async ({ partition, message }) => {
          const v = message.value.toString()
          if (ends.has(partition)) after.push(`${partition}@${message.offset}: ${v}`)
          else if (v === SENTINEL) ends.add(partition)
          else got[partition].push(v)
          if (ends.size === PARTS) resolve()
        },
      })
      .catch(reject)
  })
  await verify.disconnect()
  if (after.length) throw new Mismatch(`records after the sentinels: ${JSON.stringify(after)}`)
  const want = byPartition(recsA)
  for (const r of inputs) want[r.partition].push(`C-${r.value}`)
  checkPartitions(`(c) read_committed of ${names.out}`, got, want)
  await checkGroupSettles(admin, names.etl, names.in, TXN)
  log(`(c) read_committed saw exactly A then C; ${names.etl}'s offsets are the input's end`)

  await producer.disconnect()
  await admin.disconnect()
  clearTimeout(timer)
  log('all checks passed')
}

main().catch(e => fail(e instanceof Mismatch ? e.message : describe(e)))
