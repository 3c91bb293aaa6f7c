"""hartool IMU streamer for MicroPython (Raspberry Pi Pico / RP2040, ESP32) with an MPU6050 or LSM6DS3.

Samples the IMU at a fixed rate paced by a machine.Timer and writes each sample to USB serial as a text
line or a binary frame (firmware_bridge/PROTOCOL.md). Single command bytes from the host switch modes:
't' text, 'b' binary, 's' start, 'p' pause. Copy main.py, imu.py and hartool_wire.py to the board.
"""

import hartool_wire

# ---- configuration -------------------------------------------------------------------------------------
MODE = "text"  # "text" or "binary" at boot; the host can switch with 't' / 'b'
RATE_HZ = 50
TEXT_TIMESTAMP = False  # True: "t_ms,ax,..." (hartool detects the extra column); False: Edge Impulse style
SAMPLES_PER_FRAME = 1  # binary: >1 saves bandwidth, adds (n-1)/RATE_HZ of latency
DECIMALS = 4
HEARTBEAT = True  # blink the on-board LED once a second while streaming
I2C_ID = 0
# Pin numbers: Pico GP4/GP5 are I2C0 SDA/SCL; ESP32 DevKit GPIO21/22 are the usual SDA/SCL.
PINS = {"rp2": {"sda": 4, "scl": 5, "led": "LED"}, "esp32": {"sda": 21, "scl": 22, "led": 2}}


class Streamer:
    """Hardware-free core: turns IMU samples and host command bytes into bytes for the serial port."""

    def __init__(
        self,
        imu,
        mode=MODE,
        text_timestamp=TEXT_TIMESTAMP,
        samples_per_frame=SAMPLES_PER_FRAME,
        decimals=DECIMALS,
        scales=hartool_wire.DEFAULT_SCALES,
    ):
        self.imu = imu
        self.text_timestamp = text_timestamp
        self.decimals = decimals
        self.framer = hartool_wire.Framer(scales, samples_per_frame)
        self.running = True
        if mode not in ("text", "binary"):
            raise ValueError("mode must be 'text' or 'binary'")
        self.mode = mode

    def set_mode(self, mode):
        """Switch format; returns bytes to send first (the pending partial frame and/or a delimiter)."""
        out = b""
        if self.mode == "binary":
            out = self.framer.flush() or b""
        self.mode = mode
        if mode == "binary":
            out += b"\x00"  # ends whatever the host had buffered, so its decoder syncs on the next frame
        return out

    def command(self, byte):
        """Handle one command byte from the host; returns bytes to send (may be empty)."""
        if byte == b"t"[0]:
            return self.set_mode("text")
        if byte == b"b"[0]:
            return self.set_mode("binary")
        if byte == b"s"[0]:
            self.running = True
        elif byte == b"p"[0]:
            self.running = False
            if self.mode == "binary":
                return self.framer.flush() or b""  # do not leave samples stranded while paused
        return b""

    def sample(self, t_ms):
        """Read the IMU once (a timer tick at device time t_ms); returns bytes to send (may be empty)."""
        if not self.running:
            return b""
        values = self.imu.read()
        if self.mode == "binary":
            return self.framer.add(values, t_ms) or b""
        self.framer.seq = (self.framer.seq + 1) & 0xFFFF  # keep counting so binary seq stays meaningful
        return hartool_wire.format_text_line(values, t_ms if self.text_timestamp else None, self.decimals)

    def missed(self, n):
        """The loop fell ``n`` ticks behind: in binary mode the host sees them as a sequence gap."""
        if n <= 0 or not self.running:
            return b""
        if self.mode == "binary":
            return self.framer.skip(n) or b""
        self.framer.seq = (self.framer.seq + n) & 0xFFFF
        return b""


def run():
    """Board entry point: set up I2C, the IMU, the timer and the LED, then stream forever."""
    import select
    import sys
    import time

    import imu as imu_drivers
    import machine

    pins = PINS.get(sys.platform, PINS["rp2"])
    i2c = machine.I2C(I2C_ID, sda=machine.Pin(pins["sda"]), scl=machine.Pin(pins["scl"]), freq=400000)
    streamer = Streamer(imu_drivers.detect(i2c))
    led = machine.Pin(pins["led"], machine.Pin.OUT) if HEARTBEAT else None

    ticks = [0]

    def on_timer(_timer):
        ticks[0] += 1  # no allocation, no I2C: safe even where timer callbacks are hard interrupts

    timer = machine.Timer(0) if sys.platform == "esp32" else machine.Timer()
    timer.init(freq=RATE_HZ, mode=machine.Timer.PERIODIC, callback=on_timer)

    stdin = getattr(sys.stdin, "buffer", sys.stdin)
    out = getattr(sys.stdout, "buffer", sys.stdout)  # raw bytes: no "\n" -> "\r\n" cooking of binary frames
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)
    t_ms = 0
    last = time.ticks_ms()
    count = 0
    while True:
        if poll.poll(0):
            cmd = stdin.read(1)
            if cmd:
                c = cmd[0]
                data = streamer.command(ord(c) if isinstance(c, str) else c)
                if data:
                    out.write(data)
        if not ticks[0]:
            machine.idle()  # sleep until the next interrupt (timer tick or USB byte)
            continue
        state = machine.disable_irq()
        pending = ticks[0]
        ticks[0] = 0
        machine.enable_irq(state)
        now = time.ticks_ms()
        # ticks_ms wraps at a port-specific period; accumulate differences into the protocol's u32 ms clock.
        t_ms = (t_ms + time.ticks_diff(now, last)) & 0xFFFFFFFF
        last = now
        data = streamer.missed(pending - 1) + streamer.sample(t_ms)
        if data:
            out.write(data)
        count += 1
        if led is not None and count % RATE_HZ == 0 and streamer.running:
            led.value(not led.value())  # Pin.toggle() is missing on some ports


if __name__ == "__main__":
    run()
