// The seed's Express server, kept as the baseline that bench/http.sh measures demo-app
// against. Same routes and bodies as the original; HOST and PORT so both apps can share a
// machine during a run.
'use strict';

const express = require('express');

const app = express();

app.get('/', (req, res) => {
  res.send('Hello, World!\n');
});

app.get('/api', (req, res) => {
  res.json({ hello: 'world' });
});

const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || '0.0.0.0';

app.listen(port, host, (err) => {
  if (err) {
    console.error(`express: cannot listen on ${host}:${port}: ${err.message}`);
    process.exit(1);
  }
  console.error(`express listening on http://${host}:${port}`);
});
