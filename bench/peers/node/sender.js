// SPDX-License-Identifier: MIT
// The Node ws sender of make bench's throughput comparison.
//
//   node sender.js --host H --port P --count N [--size 100]
//
// Sends N text messages as fast as ws takes them, then close(1000), and
// exits on 'close' (which ws emits once the server's close frame has arrived
// and the socket has ended). Prints `sent=N elapsed_us=T` (T: from 'open' to
// 'close') and exits 0; non-zero on any failure, including a server close
// code other than 1000.
//
// Backpressure: ws.send() never blocks, it queues. While more than
// HIGH_WATER bytes are queued (ws.bufferedAmount), the next message is sent
// with a callback and the loop pauses until that callback reports it written
// to the socket; without this the queue would hold all N messages.
'use strict';

const WebSocket = require('ws');

const HIGH_WATER = 4 * 1024 * 1024;

function parseArgs(argv) {
  const args = {host: '127.0.0.1', port: null, count: null, size: 100};
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    const value = argv[i + 1];
    if (value === undefined) {
      throw new Error('missing value for ' + name);
    }
    if (name === '--host') {
      args.host = value;
    } else if (name === '--port' || name === '--count' || name === '--size') {
      if (!/^\d+$/.test(value)) {
        throw new Error('bad number for ' + name + ': ' + value);
      }
      args[name.slice(2)] = Number(value);
    } else {
      throw new Error('unknown argument ' + name);
    }
  }
  if (args.port === null || args.count === null) {
    throw new Error('usage: sender.js --host H --port P --count N [--size 100]');
  }
  return args;
}

function fail(message) {
  process.stderr.write('node sender: ' + message + '\n');
  process.exit(1);
}

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    fail(error.message);
  }
  let payload = '';
  for (let i = 0; i < args.size; ++i) {
    payload += String.fromCharCode(97 + (i % 26));
  }

  const ws = new WebSocket('ws://' + args.host + ':' + args.port + '/',
                           {perMessageDeflate: false});
  let sent = 0;
  let started = 0n;

  function pump(error) {
    if (error) {
      fail('send failed: ' + error.message);
    }
    while (sent < args.count) {
      ++sent;
      if (ws.bufferedAmount >= HIGH_WATER) {
        ws.send(payload, pump);
        return;
      }
      ws.send(payload);
    }
    ws.close(1000);
  }

  ws.on('open', () => {
    started = process.hrtime.bigint();
    pump();
  });
  ws.on('unexpected-response', (request, response) => {
    fail('upgrade answered with HTTP ' + response.statusCode);
  });
  ws.on('error', (error) => fail(error.message));
  ws.on('close', (code) => {
    const elapsedUs = (process.hrtime.bigint() - started) / 1000n;
    if (started === 0n) {
      fail('closed before the connection opened');
    }
    if (sent !== args.count) {
      fail('closed after ' + sent + ' of ' + args.count + ' messages');
    }
    if (code !== 1000) {
      fail('server close code ' + code + ', expected 1000');
    }
    process.stdout.write('sent=' + sent + ' elapsed_us=' + elapsedUs + '\n');
    process.exitCode = 0;
  });
}

main();
