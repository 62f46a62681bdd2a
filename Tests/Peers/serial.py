#!/usr/bin/env python3
"""Runs shell lines in the fixture guest through its serial console.

    serial.py SOCKET COMMAND...   for each COMMAND, print its output

The guest's /init runs each line it reads; each command is sent as
`COMMAND; echo "@@""END"` and its output read up to the @@END marker (the
first line read back is the echo of what was sent, and is dropped). Each
command's output is printed after a line `@@ COMMAND`. Exits 1 after 30 s.
"""
import socket
import sys
import time


def main():
    path = sys.argv[1]
    connection = socket.socket(socket.AF_UNIX)
    for _ in range(500):
        try:
            connection.connect(path)
            break
        except OSError:
            time.sleep(0.02)
    connection.settimeout(30)
    pending = b""
    for command in sys.argv[2:]:
        connection.sendall(command.encode() + b'; echo "@@""END"\n')
        while b"@@END\r\n" not in pending and b"@@END\n" not in pending:
            try:
                data = connection.recv(65536)
            except socket.timeout:
                sys.exit("serial.py: no @@END from the guest after 30 s")
            if not data:
                sys.exit("serial.py: the guest's console closed")
            pending += data
        marker = pending.index(b"@@END")
        text = pending[:marker].decode(errors="replace").replace("\r", "")
        pending = pending[marker + 5:].lstrip(b"\r\n")
        lines = text.split("\n")
        # Drop the echo of the command itself.
        while lines and 'echo "@@""END"' not in lines[0] and lines[0].strip() == "":
            lines.pop(0)
        if lines and 'echo "@@""END"' in lines[0]:
            lines.pop(0)
        print("@@ " + command)
        print("\n".join(line for line in lines if line.strip() != ""))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
