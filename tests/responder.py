#!/usr/bin/env python3
"""A misbehaving echo target for tests: answers ICMP and ICMPv6 echo requests on raw sockets,
after a chosen delay, and can drop, duplicate or corrupt its replies or answer with an error;
it can also drop only what is sent to some of its addresses, leaving the others answered.

Run it in the target's network namespace with net.ipv4.icmp_echo_ignore_all=1 and
net.ipv6.icmp.echo_ignore_all=1 there, so the kernel does not answer as well. Every request
seen, of either family, is printed as `request SRC ID SEQ TIME`, flushed, with the monotonic
time it arrived, so a test can count and time them.

ICMPv6 replies leave through an IPPROTO_RAW socket with an IPv6 header built here, checksum
included: on an ICMPv6 socket the kernel would compute the checksum itself and overwrite the
wrong one `bad-checksum` sends. The receiving kernel drops such a reply before any socket sees
it (see src/packet/icmpv6.rs), so to the prober `bad-checksum` over IPv6 looks like `drop`.
"""
import argparse
import heapq
import itertools
import select
import socket
import struct
import sys
import threading
import time

MODES = ["normal", "drop", "duplicate", "bad-checksum", "wrong-id", "wrong-seq",
         "wrong-payload", "unreachable"]
ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY = 128, 129
# <linux/in6.h>: asks for each packet's traffic class and flow label as a control message.
IPV6_FLOWINFO = 11
# <linux/in.h>: a control message that picks a packet's source address (Python before 3.13
# does not name it).
IP_PKTINFO = 8


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def with_checksum(message: bytearray, pseudo_header: bytes = b"") -> bytes:
    message[2:4] = b"\0\0"
    message[2:4] = struct.pack("!H", checksum(pseudo_header + bytes(message)))
    return bytes(message)


def echo_reply(mode: str, request: bytes, reply_type: int) -> bytearray:
    """The echo reply to `request`, changed as `mode` asks; its checksum still to compute."""
    reply = bytearray(request)
    reply[0] = reply_type
    if mode == "wrong-id":
        reply[4] ^= 0xFF
    elif mode == "wrong-seq":
        reply[6:8] = struct.pack("!H", (struct.unpack("!H", reply[6:8])[0] + 1) & 0xFFFF)
    elif mode == "wrong-payload" and len(reply) > 8:
        reply[-1] ^= 0xFF
    return reply


def spoil(packet: bytes, at: int) -> bytes:
    """`packet` with the checksum at `at` wrong, for bad-checksum mode."""
    return packet[:at] + struct.pack("!H", struct.unpack("!H", packet[at:at + 2])[0] ^ 0x5555) + packet[at + 2:]


def replies(mode: str, ip_packet: bytes, request: bytes) -> list:
    """The ICMP messages to send back for one echo request."""
    if mode == "unreachable":
        # Host unreachable, quoting the request's IP header and first 8 bytes.
        header_len = (ip_packet[0] & 0x0F) * 4
        return [with_checksum(bytearray(b"\x03\x01\0\0\0\0\0\0") + ip_packet[:header_len + 8])]
    packet = with_checksum(echo_reply(mode, request, 0))
    if mode == "bad-checksum":
        packet = spoil(packet, 2)
    return [packet, packet] if mode == "duplicate" else [packet]


def ipv6_header(flowinfo: int, payload_len: int, hop_limit: int, source: bytes, destination: bytes) -> bytes:
    return struct.pack("!IHBB", 0x60000000 | flowinfo, payload_len, socket.IPPROTO_ICMPV6, hop_limit) + source + destination


def replies6(mode: str, request: bytes, requester: bytes, local: bytes, hop_limit: int, flowinfo: int) -> list:
    """The IPv6 packets, header included, to send back for one ICMPv6 echo request that
    `requester` sent to our address `local` with `hop_limit` and `flowinfo` left on arrival."""
    if mode == "unreachable":
        # Address unreachable, quoting the request as it arrived: its header rebuilt, since
        # the socket hands over only the ICMPv6 message, and all of the request.
        message = bytearray(b"\x01\x03\0\0\0\0\0\0") + ipv6_header(flowinfo, len(request), hop_limit, requester, local) + request
    else:
        message = echo_reply(mode, request, ICMPV6_ECHO_REPLY)
    pseudo_header = local + requester + struct.pack("!I3xB", len(message), socket.IPPROTO_ICMPV6)
    packet = ipv6_header(0, len(message), 64, local, requester) + with_checksum(message, pseudo_header)
    if mode == "bad-checksum":
        packet = spoil(packet, 40 + 2)
    return [packet, packet] if mode == "duplicate" else [packet]


def receive6(sock: socket.socket):
    """One ICMPv6 echo request from `sock`: (request, requester, local address, hop limit,
    flow info), or None for any other ICMPv6 message."""
    request, ancillary, _, (requester, *_) = sock.recvmsg(65535, 256)
    if len(request) < 8 or request[0] != ICMPV6_ECHO_REQUEST:
        return None
    local, hop_limit, flowinfo = None, 64, 0
    for level, kind, data in ancillary:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == socket.IPV6_PKTINFO:
            local = data[:16]
        elif kind == socket.IPV6_HOPLIMIT:
            hop_limit = struct.unpack("i", data[:4])[0]
        elif kind == IPV6_FLOWINFO:
            flowinfo = struct.unpack("!I", data[:4])[0] & 0x0FFFFFFF
    if local is None:
        raise RuntimeError("no IPV6_PKTINFO with an ICMPv6 request: cannot tell which address it was sent to")
    return request, requester, local, hop_limit, flowinfo


def canonical(address: str) -> str:
    """`address` as inet_ntop writes it, so that 2001:DB8::2 and 2001:db8::2 are one address."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_ntop(family, socket.inet_pton(family, address))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES, default="normal")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--answer-first", type=int, default=None,
                        help="in drop mode: answer this many requests normally first")
    parser.add_argument("--drop-to", action="append", default=[], metavar="ADDRESS",
                        help="in any mode: never answer requests sent to ADDRESS, one of this "
                             "namespace's addresses (repeat for several); the others are answered")
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    for option in (socket.IPV6_RECVPKTINFO, socket.IPV6_RECVHOPLIMIT, IPV6_FLOWINFO):
        sock6.setsockopt(socket.IPPROTO_IPV6, option, 1)
    send6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    dropped_to = {canonical(address) for address in args.drop_to}
    queue: list = []
    order = itertools.count()
    ready = threading.Condition()

    def sender() -> None:
        while True:
            with ready:
                while not queue or queue[0][0] > time.monotonic():
                    ready.wait(None if not queue else queue[0][0] - time.monotonic())
                _, _, out, packet, destination, local = heapq.heappop(queue)
            if out is sock:
                # From the address the request was sent to, as a host answers: left to the
                # kernel, an answer for a second address would leave from the first one.
                pktinfo = struct.pack("i4s4s", 0, socket.inet_aton(local), bytes(4))
                out.sendmsg([packet], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, (destination, 0))
            else:
                out.sendto(packet, (destination, 0))

    threading.Thread(target=sender, daemon=True).start()
    print("ready", flush=True)
    seen = 0
    while True:
        readable, _, _ = select.select([sock, sock6], [], [])
        for ready_sock in readable:
            if ready_sock is sock:
                ip_packet, (source, _) = sock.recvfrom(65535)
                header_len = (ip_packet[0] & 0x0F) * 4
                request = ip_packet[header_len:]
                if len(request) < 8 or request[0] != 8:
                    continue
                destination = socket.inet_ntop(socket.AF_INET, ip_packet[16:20])
            else:
                received = receive6(sock6)
                if received is None:
                    continue
                request, source, local, hop_limit, flowinfo = received
                destination = socket.inet_ntop(socket.AF_INET6, local)
            seen += 1
            identifier, sequence = struct.unpack("!HH", request[4:8])
            print(f"request {source} {identifier} {sequence} {time.monotonic():.6f}", flush=True)
            mode = args.mode
            if mode == "drop" and args.answer_first is not None and seen <= args.answer_first:
                mode = "normal"
            if mode == "drop" or destination in dropped_to:
                continue
            if ready_sock is sock:
                out, packets = sock, replies(mode, ip_packet, request)
            else:
                requester = socket.inet_pton(socket.AF_INET6, source)
                out, packets = send6, replies6(mode, request, requester, local, hop_limit, flowinfo)
            due = time.monotonic() + args.delay_ms / 1000
            with ready:
                for packet in packets:
                    heapq.heappush(queue, (due, next(order), out, packet, source, destination))
                ready.notify()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
