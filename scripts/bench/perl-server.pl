#!/usr/bin/perl
# perl-server.pl - the classic Perl file server: one process, one
# connection at a time, the file copied with a sysread/syswrite loop of
# 64 KiB. Used by scripts/bench-servers.sh as a real program whose copy
# loop the library may serve; a minimal HTTP/1.0 answer so that a plain
# curl can fetch and check it.
#
#   perl perl-server.pl PORT DOCROOT
#
# Binds 127.0.0.1 only; ends on SIGTERM (the default action).
use strict;
use warnings;
use Socket;

my ($port, $root) = @ARGV;
die "usage: perl-server.pl PORT DOCROOT\n" unless defined $root;
socket(my $ls, PF_INET, SOCK_STREAM, getprotobyname('tcp')) or die "socket: $!\n";
setsockopt($ls, SOL_SOCKET, SO_REUSEADDR, 1) or die "setsockopt: $!\n";
bind($ls, sockaddr_in($port, inet_aton('127.0.0.1'))) or die "bind: $!\n";
listen($ls, 16) or die "listen: $!\n";
while (accept(my $c, $ls)) {
	# The request line and headers, up to the empty line (read all of
	# them: closing with unread bytes would reset the connection).
	my $req = '';
	while ($req !~ /\r?\n\r?\n/) {
		my $n = sysread($c, $req, 4096, length $req);
		last unless $n;
	}
	my ($path) = $req =~ m{^GET /(\S*)};
	my $f;
	if (!defined $path || $path =~ m{\.\.} || !open($f, '<:raw', "$root/$path")) {
		syswrite($c, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
		close $c;
		next;
	}
	my $size = -s $f;
	syswrite($c, "HTTP/1.0 200 OK\r\nContent-Length: $size\r\n\r\n");
	my $buf;
	while (my $n = sysread($f, $buf, 65536)) {
		my $off = 0;
		while ($off < $n) {
			my $w = syswrite($c, $buf, $n - $off, $off);
			die "write: $!\n" unless defined $w;
			$off += $w;
		}
	}
	close $f;
	close $c;
}
