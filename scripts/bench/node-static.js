// node-static.js - the usual Node.js static file server: every request
// answered with fs.createReadStream(file).pipe(res). Used by
// scripts/bench-servers.sh as a real program whose copy loop the library
// may serve.
//
//   node node-static.js PORT DOCROOT
//
// Binds 127.0.0.1 only; ends on SIGTERM.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');

const [port, root] = process.argv.slice(2);
if (!root) {
	console.error('usage: node node-static.js PORT DOCROOT');
	process.exit(2);
}
http.createServer((req, res) => {
	const p = path.join(root, path.normalize(decodeURIComponent(req.url.split('?')[0])));
	fs.stat(p, (err, st) => {
		if (err || !st.isFile() || !p.startsWith(root)) {
			res.writeHead(404, { 'Content-Length': 0 });
			res.end();
			return;
		}
		res.writeHead(200, { 'Content-Length': st.size });
		fs.createReadStream(p).pipe(res);
	});
}).listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
