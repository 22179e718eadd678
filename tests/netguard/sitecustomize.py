"""Network guard for the tests: any connection to a non-loopback address is refused and logged.

Active when ``FTLIB_NETGUARD_LOG`` names a file. The tests put this folder on ``PYTHONPATH``, so
every Python process they start (the Jupyter kernels included) loads it at start-up; the pytest
process itself calls :func:`install`. A notebook that tries to reach a model hub then fails, and
the attempt is written to the log, which the test session checks at the end.
"""
import ipaddress
import os
import socket

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_local(host) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str, log: str):
    with open(log, "a") as f:
        f.write(f"pid {os.getpid()}: {what}\n")
    raise OSError(f"network access blocked by the ftcourse tests: {what}")


def install(log: str) -> None:
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse(f"connect {address}", log)
        return _real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse(f"connect_ex {address}", log)
        return _real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host if not isinstance(host, bytes) else host.decode()):
            _refuse(f"getaddrinfo {host!r}", log)
        return _real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo


if os.environ.get("FTLIB_NETGUARD_LOG"):
    install(os.environ["FTLIB_NETGUARD_LOG"])
