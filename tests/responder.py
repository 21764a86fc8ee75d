#!/usr/bin/env python3
"""A misbehaving echo target for tests: answers ICMP echo requests on a raw socket, after a
chosen delay, and can drop, duplicate or corrupt its replies or answer with an ICMP error.

Run it in the target's network namespace with net.ipv4.icmp_echo_ignore_all=1 there, so the
kernel does not answer as well. Every request seen is printed as `request SRC ID SEQ TIME`, flushed,
with the monotonic time it arrived, so a test can count and time them.
"""
import argparse
import heapq
import socket
import struct
import sys
import threading
import time

MODES = ["normal", "drop", "duplicate", "bad-checksum", "wrong-id", "wrong-seq",
         "wrong-payload", "unreachable"]


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def with_checksum(message: bytearray) -> bytes:
    message[2:4] = b"\0\0"
    message[2:4] = struct.pack("!H", checksum(bytes(message)))
    return bytes(message)


def replies(mode: str, ip_packet: bytes, request: bytes) -> list:
    """The ICMP messages to send back for one echo request."""
    reply = bytearray(request)
    reply[0] = 0
    if mode == "unreachable":
        # Host unreachable, quoting the request's IP header and first 8 bytes.
        header_len = (ip_packet[0] & 0x0F) * 4
        return [with_checksum(bytearray(b"\x03\x01\0\0\0\0\0\0") + ip_packet[:header_len + 8])]
    if mode == "wrong-id":
        reply[4] ^= 0xFF
    elif mode == "wrong-seq":
        reply[6:8] = struct.pack("!H", (struct.unpack("!H", reply[6:8])[0] + 1) & 0xFFFF)
    elif mode == "wrong-payload" and len(reply) > 8:
        reply[-1] ^= 0xFF
    packet = with_checksum(reply)
    if mode == "bad-checksum":
        packet = packet[:2] + struct.pack("!H", checksum(packet[:2] + b"\0\0" + packet[4:]) ^ 0x5555) + packet[4:]
    return [packet, packet] if mode == "duplicate" else [packet]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=MODES, default="normal")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--answer-first", type=int, default=None,
                        help="in drop mode: answer this many requests normally first")
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    queue: list = []
    ready = threading.Condition()

    def sender() -> None:
        while True:
            with ready:
                while not queue or queue[0][0] > time.monotonic():
                    ready.wait(None if not queue else queue[0][0] - time.monotonic())
                _, _, packet, destination = heapq.heappop(queue)
            sock.sendto(packet, (destination, 0))

    threading.Thread(target=sender, daemon=True).start()
    print("ready", flush=True)
    seen = 0
    while True:
        ip_packet, (source, _) = sock.recvfrom(65535)
        header_len = (ip_packet[0] & 0x0F) * 4
        request = ip_packet[header_len:]
        if len(request) < 8 or request[0] != 8:
            continue
        seen += 1
        identifier, sequence = struct.unpack("!HH", request[4:8])
        print(f"request {source} {identifier} {sequence} {time.monotonic():.6f}", flush=True)
        mode = args.mode
        if mode == "drop" and args.answer_first is not None and seen <= args.answer_first:
            mode = "normal"
        if mode == "drop":
            continue
        due = time.monotonic() + args.delay_ms / 1000
        with ready:
            for packet in replies(mode, ip_packet, request):
                heapq.heappush(queue, (due, seen, packet, source))
            ready.notify()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
