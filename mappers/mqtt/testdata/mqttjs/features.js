'use strict'
// MQTT 5 features through a meshka node, with MQTT.js: mqttjs_test.go
// runs this with MQTT_URL set, reads the JSON line it prints last, and
// checks it again; the exit code is 1 when a check here failed.

const mqtt = require('mqtt')

const url = process.env.MQTT_URL
const waitMs = Number(process.env.MQTTJS_WAIT_MS || 20000)
const prefix = process.env.MQTTJS_PREFIX || 'js'

const clients = []

// connect connects an MQTT 5 client that keeps what it receives and the
// publishes it sends.
async function connect (clientId) {
  const c = await new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { protocolVersion: 5, clientId, clean: true, reconnectPeriod: 0, connectTimeout: waitMs })
    c.once('connect', (connack) => { c.connack = connack; resolve(c) })
    c.once('error', reject)
    c.once('close', () => reject(new Error(`${clientId}: closed before CONNACK`)))
  })
  clients.push(c)
  c.inbox = []
  c.waiters = []
  c.sent = []
  c.on('message', (topic, payload, packet) => {
    c.inbox.push({ topic, payload: payload.toString(), packet })
    for (const w of c.waiters.splice(0)) w()
  })
  c.on('packetsend', (p) => {
    if (p.cmd === 'publish') c.sent.push({ topic: p.topic.toString(), alias: p.properties && p.properties.topicAlias })
  })
  return c
}

// next is the client's next message, within waitMs.
function next (c, what) {
  return new Promise((resolve, reject) => {
    const take = () => {
      if (c.inbox.length > 0) {
        clearTimeout(timer)
        resolve(c.inbox.shift())
        return
      }
      c.waiters.push(take)
    }
    const timer = setTimeout(() => reject(new Error(`${c.options.clientId}: no message (${what}) within ${waitMs} ms`)), waitMs)
    take()
  })
}

// ids is a message's subscription identifiers, as a list.
function ids (m) {
  const id = m.packet.properties && m.packet.properties.subscriptionIdentifier
  if (id === undefined) return []
  return Array.isArray(id) ? id : [id]
}

const results = { checks: {} }
function check (name, ok, detail) {
  results.checks[name] = ok
  if (!ok) console.error(`check ${name} failed: ${JSON.stringify(detail)}`)
}

async function main () {
  const t = (s) => `${prefix}/${s}`

  // Properties, and the subscription identifiers of two subscriptions.
  const sub = await connect(`${prefix}-sub`)
  const pub = await connect(`${prefix}-pub`)
  const cp = pub.connack.properties || {}
  results.connack = { topicAliasMaximum: cp.topicAliasMaximum, receiveMaximum: cp.receiveMaximum }
  await sub.subscribeAsync(t('props/#'), { qos: 1, properties: { subscriptionIdentifier: 7 } })
  await sub.subscribeAsync(t('other/#'), { qos: 1, properties: { subscriptionIdentifier: 9 } })
  await pub.subscribeAsync(t('replies/#'), { qos: 1 })
  await pub.publishAsync(t('props/1'), '{"t":21.5}', {
    qos: 1,
    properties: {
      contentType: 'application/json',
      payloadFormatIndicator: true,
      userProperties: { site: 'north', tag: ['a', 'b'] },
      responseTopic: t('replies/1'),
      correlationData: Buffer.from([1, 2, 3])
    }
  })
  const m = await next(sub, 'props')
  const p = m.packet.properties || {}
  results.props = {
    topic: m.topic,
    payload: m.payload,
    qos: m.packet.qos,
    contentType: p.contentType,
    payloadFormatIndicator: p.payloadFormatIndicator,
    userProperties: p.userProperties,
    responseTopic: p.responseTopic,
    correlationData: p.correlationData ? p.correlationData.toString('hex') : null,
    subscriptionIds: ids(m)
  }
  check('props', m.topic === t('props/1') && p.contentType === 'application/json' && p.payloadFormatIndicator === true &&
    p.userProperties && p.userProperties.site === 'north' && JSON.stringify(p.userProperties.tag) === '["a","b"]' &&
    p.responseTopic === t('replies/1') && results.props.correlationData === '010203', results.props)
  check('subscription id 7', JSON.stringify(ids(m)) === '[7]', ids(m))

  // Request and response: the subscriber answers on the response topic
  // with the correlation data it got.
  await sub.publishAsync(p.responseTopic, 'pong', { qos: 1, properties: { correlationData: p.correlationData } })
  const reply = await next(pub, 'reply')
  const rc = reply.packet.properties && reply.packet.properties.correlationData
  results.reply = { topic: reply.topic, payload: reply.payload, correlationData: rc ? rc.toString('hex') : null }
  check('reply', reply.topic === t('replies/1') && reply.payload === 'pong' && results.reply.correlationData === '010203', results.reply)

  await pub.publishAsync(t('other/x'), 'other', { qos: 1 })
  const other = await next(sub, 'other')
  results.otherSubscriptionIds = ids(other)
  check('subscription id 9', other.topic === t('other/x') && JSON.stringify(ids(other)) === '[9]', { topic: other.topic, ids: ids(other) })

  // No local: the client does not get its own publish; on one topic
  // (one partition, in order) the next message it gets is another's.
  const local = await connect(`${prefix}-local`)
  const peer = await connect(`${prefix}-peer`)
  await local.subscribeAsync(t('nl/t'), { qos: 1, nl: true })
  await peer.subscribeAsync(t('nl/t'), { qos: 1 })
  await local.publishAsync(t('nl/t'), 'mine', { qos: 1 })
  const peerGot = await next(peer, 'no local: mine')
  await peer.publishAsync(t('nl/t'), 'theirs', { qos: 1 })
  const localGot = await next(local, 'no local: theirs')
  results.noLocal = { peerGot: peerGot.payload, localGot: localGot.payload }
  check('no local', peerGot.payload === 'mine' && localGot.payload === 'theirs', results.noLocal)

  // Retain handling 2: no retained message on subscribing. The node
  // handles SUBSCRIBEs in order and writes to a client in order, so the
  // probe's retained message, from a later SUBSCRIBE, comes after any the
  // first one sent.
  await pub.publishAsync(t('rh/kept'), 'kept', { qos: 1, retain: true })
  await pub.publishAsync(t('rh/probe'), 'probe', { qos: 1, retain: true })
  const rh = await connect(`${prefix}-rh`)
  await rh.subscribeAsync(t('rh/kept'), { qos: 1, rh: 2 })
  await rh.subscribeAsync(t('rh/probe'), { qos: 1, rh: 0 })
  const firstRh = await next(rh, 'retain handling: probe')
  const control = await connect(`${prefix}-rh0`)
  await control.subscribeAsync(t('rh/kept'), { qos: 1, rh: 0 })
  const controlGot = await next(control, 'retain handling 0: kept')
  results.retainHandling = { first: firstRh.payload, firstRetain: firstRh.packet.retain, control: controlGot.payload, controlRetain: controlGot.packet.retain }
  check('retain handling 2', firstRh.payload === 'probe' && firstRh.packet.retain === true, results.retainHandling)
  check('retain handling 0', controlGot.payload === 'kept' && controlGot.packet.retain === true, results.retainHandling)

  // A topic alias the client sets, then uses with an empty topic name.
  await sub.subscribeAsync(t('alias/#'), { qos: 1 })
  const aliaser = await connect(`${prefix}-alias`)
  await aliaser.publishAsync(t('alias/t'), 'first', { qos: 1, properties: { topicAlias: 1 } })
  await aliaser.publishAsync('', 'second', { qos: 1, properties: { topicAlias: 1 } })
  const a1 = await next(sub, 'alias: first')
  const a2 = await next(sub, 'alias: second')
  results.alias = { sent: aliaser.sent, got: [[a1.topic, a1.payload], [a2.topic, a2.payload]] }
  check('topic alias', aliaser.sent.length === 2 && aliaser.sent[1].topic === '' && aliaser.sent[1].alias === 1 &&
    a1.topic === t('alias/t') && a1.payload === 'first' && a2.topic === t('alias/t') && a2.payload === 'second', results.alias)
}

main().then(() => 0, (err) => {
  console.error(err && err.stack ? err.stack : err)
  results.error = String(err && err.message ? err.message : err)
  return 1
}).then(async (code) => {
  // a client whose publish is still waiting would hold a graceful end
  await Promise.race([
    Promise.all(clients.map((c) => c.endAsync(true).catch(() => {}))),
    new Promise((resolve) => setTimeout(resolve, 2000))
  ])
  console.log(JSON.stringify(results))
  const failed = Object.entries(results.checks).filter(([, ok]) => !ok).map(([name]) => name)
  if (failed.length > 0) console.error(`failed: ${failed.join(', ')}`)
  process.exit(code !== 0 || failed.length > 0 ? 1 : 0)
})
