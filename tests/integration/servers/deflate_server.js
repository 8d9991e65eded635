// SPDX-License-Identifier: MIT
// A Node `ws` echo server with perMessageDeflate, for the compression interop
// tests (ws from bench/peers/node/node_modules via NODE_PATH). Prints
// "port=N" first; argv[2] is a JSON-lines log: one line per connection with
// the negotiated extensions, one per message with its size and whether the
// frame was compressed (RSV1, seen through ws's receiver).
'use strict';
const fs = require('fs');
const { WebSocketServer } = require('ws');

const log = process.argv[2];
const noContextTakeover = process.argv.includes('--no-context-takeover');
function record(entry) {
  fs.appendFileSync(log, JSON.stringify(entry) + '\n');
}

// Options left undefined accept whatever the client offers (an explicit
// false would refuse an offer carrying that parameter).
const deflateOptions = { threshold: 0 };
if (noContextTakeover) {
  deflateOptions.serverNoContextTakeover = true;
  deflateOptions.clientNoContextTakeover = true;
}
const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflateOptions });
let answered = null;
server.on('headers', (headers) => {
  answered = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:')) || null;
});
server.on('listening', () => {
  process.stdout.write('port=' + server.address().port + '\n');
});
server.on('connection', (socket, request) => {
  record({
    event: 'connected',
    extensions: answered,
    request_extensions: request.headers['sec-websocket-extensions'] || null,
  });
  socket.on('message', (data, isBinary) => {
    record({ event: 'message', size: data.length });
    socket.send(data, { binary: isBinary, compress: true });
  });
  socket.on('close', (code) => record({ event: 'closed', code }));
});
process.on('SIGTERM', () => process.exit(0));
