"""IMU drivers for the hartool MicroPython streamer: MPU6050 and LSM6DS3 over I2C, plus FakeIMU for tests.

Every driver has the same tiny interface: ``read() -> (ax, ay, az, gx, gy, gz)`` with acceleration in g
and angular rate in rad/s, configured for +-16 g and +-2000 dps (the ranges the wire scales assume).
Runs on MicroPython and CPython (tests pass a fake ``i2c`` with readfrom_mem / writeto_mem).
"""

import struct

DEG_TO_RAD = 0.017453292519943295


class _I2CIMU:
    """What both I2C drivers share: check WHO_AM_I at ``addr``, then write single registers."""

    NAME = ""
    WHO_AM_I = 0
    KNOWN_IDS = ()

    def __init__(self, i2c, addr):
        self.i2c = i2c
        self.addr = addr
        who = i2c.readfrom_mem(addr, self.WHO_AM_I, 1)[0]
        if who not in self.KNOWN_IDS:
            raise OSError("no " + self.NAME + " at " + hex(addr) + " (WHO_AM_I=" + hex(who) + ")")

    def _write(self, reg, value):
        self.i2c.writeto_mem(self.addr, reg, bytes((value,)))


class MPU6050(_I2CIMU):
    """InvenSense MPU6050 / MPU6500 family at 0x68 (AD0 low) or 0x69 (AD0 high)."""

    NAME = "MPU6050"
    WHO_AM_I = 0x75
    PWR_MGMT_1 = 0x6B
    SMPLRT_DIV = 0x19
    CONFIG = 0x1A
    GYRO_CONFIG = 0x1B
    ACCEL_CONFIG = 0x1C
    ACCEL_XOUT_H = 0x3B
    KNOWN_IDS = (0x68, 0x70, 0x71, 0x72, 0x73)  # MPU6050, MPU6500, MPU9250, clones

    ACC_LSB_PER_G = 2048.0  # +-16 g
    GYRO_LSB_PER_DPS = 16.4  # +-2000 dps

    def __init__(self, i2c, addr=0x68):
        super().__init__(i2c, addr)
        self._write(self.PWR_MGMT_1, 0x01)  # wake up, clock from the X gyro PLL (more stable than 8 MHz RC)
        self._write(self.CONFIG, 0x03)  # DLPF 44 Hz: anti-aliasing for 50-100 Hz sampling
        self._write(self.SMPLRT_DIV, 0x00)
        self._write(self.GYRO_CONFIG, 0x18)  # +-2000 dps
        self._write(self.ACCEL_CONFIG, 0x18)  # +-16 g
        self._acc_k = 1.0 / self.ACC_LSB_PER_G
        self._gyro_k = DEG_TO_RAD / self.GYRO_LSB_PER_DPS
        self._buf = bytearray(14)

    def read(self):
        # One 14-byte burst (accel, temperature, gyro) so all six values come from the same sample.
        self.i2c.readfrom_mem_into(self.addr, self.ACCEL_XOUT_H, self._buf)
        ax, ay, az, _temp, gx, gy, gz = struct.unpack(">hhhhhhh", self._buf)
        a = self._acc_k
        g = self._gyro_k
        return (ax * a, ay * a, az * a, gx * g, gy * g, gz * g)


class LSM6DS3(_I2CIMU):
    """ST LSM6DS3 / LSM6DS3TR-C / LSM6DSL at 0x6A (SA0 low) or 0x6B (SA0 high)."""

    NAME = "LSM6DS3"
    WHO_AM_I = 0x0F
    CTRL1_XL = 0x10
    CTRL2_G = 0x11
    CTRL3_C = 0x12
    OUTX_L_G = 0x22
    KNOWN_IDS = (0x69, 0x6A)

    ACC_G_PER_LSB = 0.000488  # +-16 g: 0.488 mg/LSB
    GYRO_DPS_PER_LSB = 0.070  # +-2000 dps: 70 mdps/LSB

    def __init__(self, i2c, addr=0x6A):
        super().__init__(i2c, addr)
        self._write(self.CTRL3_C, 0x44)  # block data update + register auto-increment for burst reads
        self._write(self.CTRL1_XL, 0x44)  # 104 Hz, +-16 g
        self._write(self.CTRL2_G, 0x4C)  # 104 Hz, +-2000 dps
        self._acc_k = self.ACC_G_PER_LSB
        self._gyro_k = self.GYRO_DPS_PER_LSB * DEG_TO_RAD
        self._buf = bytearray(12)

    def read(self):
        # Gyro (0x22..0x27) then accel (0x28..0x2D), little-endian, in one burst.
        self.i2c.readfrom_mem_into(self.addr, self.OUTX_L_G, self._buf)
        gx, gy, gz, ax, ay, az = struct.unpack("<hhhhhh", self._buf)
        a = self._acc_k
        g = self._gyro_k
        return (ax * a, ay * a, az * a, gx * g, gy * g, gz * g)


class FakeIMU:
    """Replays given samples (tuples of six floats); loops by default so a demo never runs dry."""

    def __init__(self, samples, loop=True):
        self.samples = [tuple(s) for s in samples]
        if not self.samples:
            raise ValueError("FakeIMU needs at least one sample")
        self.loop = loop
        self.index = 0

    def read(self):
        if self.index >= len(self.samples):
            if not self.loop:
                raise IndexError("FakeIMU ran out of samples")
            self.index = 0
        sample = self.samples[self.index]
        self.index += 1
        return sample


def detect(i2c):
    """Return a driver for the first IMU found on the bus (MPU6050 family, then LSM6DS3 family)."""
    present = i2c.scan()
    for cls, addrs in ((MPU6050, (0x68, 0x69)), (LSM6DS3, (0x6A, 0x6B))):
        for addr in addrs:
            if addr in present:
                try:
                    return cls(i2c, addr)
                except OSError:
                    continue  # another chip at that address: keep looking
    raise OSError("no supported IMU on I2C (found " + str([hex(a) for a in present]) + ")")
