// What every test client script prints: one JSON line {"checks": {name: bool}, "values": {...}, "errors": [...]}.
'use strict';

function report() {
  const checks = {};
  const values = {};
  const errors = [];
  return {
    checks,
    errors,
    value(name, v) { values[name] = v; },
    check(name, ok, detail) { checks[name] = !!ok; if (!ok && detail) errors.push(`${name}: ${detail}`); },
    fail(e) { errors.push(e && e.message ? e.message : String(e)); },
    print() { console.log(JSON.stringify({ checks, values, errors })); },
  };
}

module.exports = { report };
