"""A plain websocket client for the tests of the event bridge's socket.

simple_websocket's Client reads the server's handshake answer and, when the server's first
message (the event bridge's "init") came in the same read, leaves that message unparsed until
more bytes arrive: the next heartbeat, 15 s later. This one parses what the handshake's read
left over, so the first receive() sees it at once. Browsers and Node's ws do the same.
"""

from __future__ import annotations

import simple_websocket


class WebSocketClient(simple_websocket.Client):
    def handshake(self) -> None:
        super().handshake()
        # Before the reading thread starts: nothing else touches the connection yet.
        self.connected = self._handle_events()
