// node-static.js - a static file server written the way Express's
// serve-static and most hand-rolled Node.js servers are: stat, headers,
// then fs.createReadStream(file, {start, end}).pipe(res). Single-range
// requests (bytes=A-B, A-, -N) get 206 or 416; HEAD gets the headers
// only. Used by tests/integration/65-node-static.sh.
//
//   node node-static.js PORT DOCROOT
//
// Binds 127.0.0.1 only; ends on SIGTERM (exit 0, so an exit report is
// written).
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');

const [port, root] = process.argv.slice(2);
if (!root) {
	console.error('usage: node node-static.js PORT DOCROOT');
	process.exit(2);
}

// range("bytes=A-B", size): [start, end] inclusive, null when absent,
// 'bad' when not satisfiable.
function range(h, size) {
	if (!h) return null;
	const m = /^bytes=(\d*)-(\d*)$/.exec(h);
	if (!m || (m[1] === '' && m[2] === '')) return 'bad';
	let start, end;
	if (m[1] === '') {
		const n = Number(m[2]);
		if (n === 0) return 'bad';
		start = Math.max(0, size - n);
		end = size - 1;
	} else {
		start = Number(m[1]);
		end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
	}
	if (start >= size || start > end) return 'bad';
	return [start, end];
}

let aborted = 0;
http.createServer((req, res) => {
	const p = path.join(root, path.normalize(decodeURIComponent(req.url.split('?')[0])));
	fs.stat(p, (err, st) => {
		if (err || !st.isFile() || !p.startsWith(root)) {
			res.writeHead(404, { 'Content-Length': 0 });
			res.end();
			return;
		}
		const r = range(req.headers.range, st.size);
		if (r === 'bad') {
			res.writeHead(416, { 'Content-Range': `bytes */${st.size}`, 'Content-Length': 0 });
			res.end();
			return;
		}
		const [start, end] = r || [0, st.size - 1];
		const h = { 'Content-Length': end - start + 1, 'Accept-Ranges': 'bytes' };
		if (r) h['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
		res.writeHead(r ? 206 : 200, h);
		if (req.method === 'HEAD') {
			res.end();
			return;
		}
		const s = fs.createReadStream(p, { start, end });
		// A client that goes away: the stream is destroyed by pipe's
		// cleanup; count it so the test can see the server noticed.
		res.on('close', () => {
			if (!res.writableFinished) {
				aborted++;
				s.destroy();
			}
		});
		s.pipe(res);
	});
}).listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => {
	console.log(`aborted ${aborted}`);
	process.exit(0);
});
