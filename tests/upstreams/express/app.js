// A small Express application, as the framework documents it, for the end-to-end tests.
//
// Behind a proxy, Express's documentation sets `trust proxy` (the host then comes from
// X-Forwarded-Host); routing is case-insensitive and ignores a trailing slash by default;
// the `method-override` middleware is used the three ways its README shows: the
// X-HTTP-Method-Override header, a `_method` query parameter, and a `_method` field of a
// urlencoded or JSON body (the README's custom getter).
//
// Usage: node app.js PORT LOG_FILE. Every request a handler serves is appended to LOG_FILE
// as a JSON line: the test's x-test-id, the resource that served it, the method, the host
// the app saw and the identity headers it received.
'use strict';

const fs = require('fs');
const express = require('express');
const methodOverride = require('method-override');

const [port, log] = [Number(process.argv[2]), process.argv[3] || '/dev/null'];
const app = express();
app.set('trust proxy', true);
app.use(express.urlencoded({ extended: false }));
app.use(express.json());
app.use(methodOverride('X-HTTP-Method-Override'));
app.use(methodOverride('_method'));
app.use(methodOverride((req) => {
  if (req.body && typeof req.body === 'object' && '_method' in req.body) {
    const method = req.body._method;
    delete req.body._method;
    return method;
  }
}));

function serve(resource) {
  return (req, res) => {
    if (req.hostname === 'admin.example.com') resource = 'admin-host';
    const identity = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (name.startsWith('x-auth-')) identity[name] = value;
    }
    const record = {
      test_id: req.get('x-test-id') || '',
      resource,
      method: req.method,
      host: req.hostname,
      identity,
      authorization: req.get('authorization') || null,
    };
    fs.appendFileSync(log, JSON.stringify(record) + '\n');
    res.json(record);
  };
}

app.use((req, res, next) => (req.hostname === 'admin.example.com' ? serve('admin-host')(req, res) : next()));
app.all('/admin', serve('admin'));
app.all('/admin/*rest', serve('admin'));
app.all('/public', serve('public'));
app.all('/public/*rest', serve('public'));
app.get('/api/orders/export', serve('orders-export'));
app.get('/api/orders/:id/history', serve('orders-history'));
app.get('/api/orders/:id', serve('order'));
app.delete('/api/orders/:id', serve('order-deleted'));
app.get('/api/orders', serve('orders-list'));
app.post('/api/orders', serve('order-created'));
app.use((req, res) => res.status(404).json({ resource: null }));

app.listen(port, '127.0.0.1', () => console.log('ready'));
