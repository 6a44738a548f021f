'use strict';
// Conformance client for kicksim: runs the real pusher-js (node build, which
// bundles faye-websocket) and prints what it sees as JSON lines on stdout.
// Usage: node conformance.js <app-key> <host> <port> <channel>
// It exits when stdin closes, or after 60 s.
const Pusher = require('pusher-js');

const [key, host, port, channel] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const pusher = new Pusher(key, {
  cluster: 'us2',
  wsHost: host,
  wsPort: Number(port),
  forceTLS: false,
  enabledTransports: ['ws'],
  disableStats: true,
});
out({ type: 'version', version: require('pusher-js/package.json').version });
pusher.connection.bind('state_change', (s) => out({ type: 'state', previous: s.previous, current: s.current }));
pusher.connection.bind('connected', () => out({ type: 'connected', socket_id: pusher.connection.socket_id }));
pusher.connection.bind('error', (e) => out({ type: 'error', error: JSON.stringify(e && e.error ? e.error : e) }));

const ch = pusher.subscribe(channel);
ch.bind('pusher:subscription_succeeded', () => out({ type: 'subscribed', channel }));
ch.bind('pusher:subscription_error', (e) => out({ type: 'subscription_error', error: JSON.stringify(e) }));
ch.bind_global((event, data) => {
  if (!event.startsWith('pusher:')) out({ type: 'event', event, data });
});

process.stdin.on('end', () => {
  pusher.disconnect();
  process.exit(0);
});
process.stdin.resume();
setTimeout(() => {
  out({ type: 'timeout' });
  process.exit(2);
}, 60000);
