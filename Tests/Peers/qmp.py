#!/usr/bin/env python3
"""A minimal QMP client for the live tests.

    qmp.py SOCKET migrate FILE [CAPABILITY...]
                                 migrate to file:FILE and wait until it completes; each
                                 CAPABILITY (mapped-ram, multifd) is set first, multifd
                                 with two channels
    qmp.py SOCKET incoming FILE [CAPABILITY...]
                                 for a QEMU started with -incoming defer: set the
                                 capabilities, load file:FILE and wait until it completes
    qmp.py SOCKET wait-incoming  wait until an incoming migration has completed
    qmp.py SOCKET cont           let a paused guest run
    qmp.py SOCKET quit           quit QEMU

Prints the final migration status; exits 1 if it is not "completed" (or after 600 s).
"""
import json
import socket
import sys
import time


class QMP:
    def __init__(self, path):
        self.socket = socket.socket(socket.AF_UNIX)
        for _ in range(500):
            try:
                self.socket.connect(path)
                break
            except OSError:
                time.sleep(0.02)
        self.file = self.socket.makefile("rw")
        self.read()  # greeting
        self.command("qmp_capabilities")

    def read(self):
        while True:
            message = json.loads(self.file.readline())
            if "event" not in message:
                return message

    def command(self, name, **arguments):
        self.file.write(json.dumps({"execute": name, "arguments": arguments}) + "\n")
        self.file.flush()
        reply = self.read()
        if "error" in reply:
            sys.exit("QMP %s failed: %s" % (name, reply["error"]))
        return reply.get("return")


def wait_for_migration(qmp):
    deadline = time.time() + 600
    while time.time() < deadline:
        status = qmp.command("query-migrate").get("status")
        if status in ("completed", "failed", "cancelled"):
            print(status)
            return status == "completed"
        time.sleep(0.05)
    print("timed out")
    return False


def set_capabilities(qmp, names):
    if names:
        qmp.command("migrate-set-capabilities", capabilities=[{"capability": name, "state": True} for name in names])
    if "multifd" in names:
        qmp.command("migrate-set-parameters", **{"multifd-channels": 2})


def main():
    qmp = QMP(sys.argv[1])
    action = sys.argv[2]
    if action == "migrate":
        set_capabilities(qmp, sys.argv[4:])
        qmp.command("migrate", uri="file:" + sys.argv[3])
        sys.exit(0 if wait_for_migration(qmp) else 1)
    if action == "incoming":
        set_capabilities(qmp, sys.argv[4:])
        qmp.command("migrate-incoming", uri="file:" + sys.argv[3])
        sys.exit(0 if wait_for_migration(qmp) else 1)
    if action == "wait-incoming":
        sys.exit(0 if wait_for_migration(qmp) else 1)
    if action == "cont":
        qmp.command("cont")
        sys.exit(0)
    if action == "quit":
        qmp.file.write(json.dumps({"execute": "quit"}) + "\n")
        qmp.file.flush()


if __name__ == "__main__":
    main()
