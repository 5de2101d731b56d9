# Shell helpers shared by the project's scripts (sourced, not run).

# log_size FILE: FILE's size in bytes (0 if it does not exist yet), to read
# later only what a start adds to it.
log_size() { if [ -f "$1" ]; then wc -c <"$1"; else echo 0; fi; }

# port_was_held FILE FROM: whether what FILE gained after byte FROM says a
# port was in use. A port in the kernel's ephemeral range can be held for
# a moment by an outgoing connection, or by a server stopped just before
# (TIME-WAIT): the scripts retry such a start.
port_was_held() { tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -q "Address already in use"; }

# listeners PORT...: the pids of the processes listening on these ports,
# one per line (none when ss is missing).
listeners() {
  local filter="" p
  for p in "$@"; do filter="${filter:+$filter or }sport = :$p"; done
  ss -ltnpH "( $filter )" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# listens PID PORT: whether process PID listens on 127.0.0.1:PORT (true
# when ss is missing: the check is then skipped).
listens() {
  command -v ss >/dev/null || return 0
  listeners "$2" | grep -qx "$1"
}
