#!/usr/bin/env python3
"""A third-party network and IPAM driver for the tests, speaking Docker's remote driver
protocol (JSON over HTTP on a unix socket), as a vendor's plugin would.

    netplugin.py SOCKET LOG ok|hang BRIDGE

ok: a NetworkDriver that makes a Linux bridge BRIDGE per network and a veth per
endpoint (handing its peer over in Join), and an IpamDriver with one pool,
10.249.7.0/24 (gateway .1, containers from .10). hang: accepts connections and never
answers. Every call is appended to LOG as "PATH JSON".
"""
import json
import os
import socketserver
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler

SOCKET, LOG, MODE, BRIDGE = sys.argv[1:5]
POOL = "10.249.7.0/24"
state = {"next": 10}


def ip(*args):
    subprocess.run(["ip", *args], check=False, capture_output=True)


def handle(path, body):
    if path == "/Plugin.Activate":
        return {"Implements": ["NetworkDriver", "IpamDriver"]}
    if path == "/NetworkDriver.GetCapabilities":
        return {"Scope": "local"}
    if path == "/NetworkDriver.CreateNetwork":
        gateway = body["IPv4Data"][0]["Gateway"]
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", gateway, "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        return {}
    if path == "/NetworkDriver.DeleteNetwork":
        ip("link", "del", BRIDGE)
        return {}
    if path in ("/NetworkDriver.CreateEndpoint", "/NetworkDriver.DeleteEndpoint"):
        return {}
    if path == "/NetworkDriver.Join":
        short = body["EndpointID"][:8]
        ip("link", "add", "pa" + short, "type", "veth", "peer", "name", "pb" + short)
        ip("link", "set", "pa" + short, "master", BRIDGE)
        ip("link", "set", "pa" + short, "up")
        return {"InterfaceName": {"SrcName": "pb" + short, "DstPrefix": "eth"}, "Gateway": "10.249.7.1"}
    if path == "/NetworkDriver.Leave":
        ip("link", "del", "pa" + body["EndpointID"][:8])
        return {}
    if path == "/IpamDriver.GetCapabilities":
        return {"RequiresMACAddress": False}
    if path == "/IpamDriver.GetDefaultAddressSpaces":
        return {"LocalDefaultAddressSpace": "local", "GlobalDefaultAddressSpace": "global"}
    if path == "/IpamDriver.RequestPool":
        return {"PoolID": "pool-1", "Pool": POOL, "Data": {}}
    if path == "/IpamDriver.RequestAddress":
        if body.get("Options", {}).get("RequestAddressType") == "com.docker.network.gateway":
            return {"Address": "10.249.7.1/24", "Data": {}}
        if body.get("Address"):
            return {"Address": body["Address"] + "/24", "Data": {}}
        n = state["next"]
        state["next"] += 1
        return {"Address": f"10.249.7.{n}/24", "Data": {}}
    if path in ("/IpamDriver.ReleaseAddress", "/IpamDriver.ReleasePool"):
        return {}
    return {"Err": f"netplugin: {path} is not implemented"}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with open(LOG, "a") as log:
            log.write(f"{self.path} {json.dumps(body)}\n")
        if MODE == "hang":
            time.sleep(3600)
            return
        answer = json.dumps(handle(self.path, body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.plugins.v1.2+json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass

    def address_string(self):
        return "plugin-client"


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCKET):
    os.unlink(SOCKET)
os.makedirs(os.path.dirname(SOCKET), exist_ok=True)
Server(SOCKET, Handler).serve_forever()
