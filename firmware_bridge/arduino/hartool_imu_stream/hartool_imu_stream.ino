// hartool_imu_stream: stream an MPU6050 over USB serial for hartool (firmware_bridge/PROTOCOL.md).
//
// Boards: Arduino Nano 33 IoT, ESP32 DevKit, Uno/Nano (AVR). MPU6050 on the Wire (I2C) bus at 0x68.
// 50 Hz sampling scheduled with micros(); text lines (Edge Impulse / serial-plotter compatible) or
// COBS/CRC binary frames. Host command bytes: 't' text, 'b' binary, 's' start, 'p' pause.
// The framing lives in hartool_frame.h (plain C99, checked against the golden vectors on the host).

#include <Wire.h>

#include "hartool_frame.h"

// ---- configuration ---------------------------------------------------------------------------------
static const uint32_t BAUD = 115200;
static const uint32_t RATE_HZ = 50;
static const uint8_t MPU_ADDR = 0x68;      // 0x69 if AD0 is tied high
static bool binaryMode = false;            // boot mode; the host switches with 't' / 'b'
static const bool TEXT_TIMESTAMP = false;  // true: "t_ms,ax,...,gz" (hartool detects the extra column)
static const uint8_t SAMPLES_PER_FRAME = 1;  // binary: up to HARTOOL_MAX_PER_FRAME, trades latency for bytes
static const uint8_t DECIMALS = 4;
#ifndef LED_BUILTIN
#define LED_BUILTIN 2  // ESP32 DevKit boards without the macro
#endif

// MPU6050 registers and the ranges the default wire scales assume (+-16 g, +-2000 dps).
static const uint8_t REG_SMPLRT_DIV = 0x19, REG_CONFIG = 0x1A, REG_GYRO_CONFIG = 0x1B, REG_ACCEL_CONFIG = 0x1C;
static const uint8_t REG_ACCEL_XOUT_H = 0x3B, REG_PWR_MGMT_1 = 0x6B, REG_WHO_AM_I = 0x75;
static const float ACC_G_PER_LSB = 1.0f / 2048.0f;
static const float GYRO_RAD_S_PER_LSB = (1.0f / 16.4f) * 0.017453292519943295f;

static const uint32_t PERIOD_US = 1000000UL / RATE_HZ;
static const float SCALES[6] = {HARTOOL_ACC_SCALE_G,      HARTOOL_ACC_SCALE_G,      HARTOOL_ACC_SCALE_G,
                                HARTOOL_GYRO_SCALE_RAD_S, HARTOOL_GYRO_SCALE_RAD_S, HARTOOL_GYRO_SCALE_RAD_S};

static hartool_framer framer;
static uint8_t frameBuf[HARTOOL_FRAME_MAX(HARTOOL_MAX_CH, HARTOOL_MAX_PER_FRAME)];
static char lineBuf[HARTOOL_TEXT_LINE_MAX(6, DECIMALS)];
static uint32_t nextDueUs;
static bool running = true;
static bool imuOk = false;
static uint32_t tickCount = 0;

static void mpuWrite(uint8_t reg, uint8_t value) {
  Wire.beginTransmission(MPU_ADDR);
  Wire.write(reg);
  Wire.write(value);
  Wire.endTransmission();
}

static bool mpuInit() {
  Wire.beginTransmission(MPU_ADDR);
  Wire.write(REG_WHO_AM_I);
  if (Wire.endTransmission(false) != 0 || Wire.requestFrom(MPU_ADDR, (uint8_t)1) != 1) {
    return false;
  }
  uint8_t who = Wire.read();
  if (who != 0x68 && who != 0x70 && who != 0x71 && who != 0x72 && who != 0x73) {
    return false;  // not an MPU6050/6500/9250 family part
  }
  mpuWrite(REG_PWR_MGMT_1, 0x01);    // wake, clock from the X gyro PLL
  mpuWrite(REG_CONFIG, 0x03);        // DLPF 44 Hz: anti-aliasing for 50-100 Hz sampling
  mpuWrite(REG_SMPLRT_DIV, 0x00);
  mpuWrite(REG_GYRO_CONFIG, 0x18);   // +-2000 dps
  mpuWrite(REG_ACCEL_CONFIG, 0x18);  // +-16 g
  return true;
}

// Reads accel, temperature and gyro in one 14-byte burst so the six values belong to one sample.
static bool mpuRead(float v[6]) {
  Wire.beginTransmission(MPU_ADDR);
  Wire.write(REG_ACCEL_XOUT_H);
  if (Wire.endTransmission(false) != 0 || Wire.requestFrom(MPU_ADDR, (uint8_t)14) != 14) {
    return false;
  }
  int16_t raw[7];
  for (uint8_t i = 0; i < 7; i++) {
    uint8_t hi = Wire.read();
    uint8_t lo = Wire.read();
    raw[i] = (int16_t)((uint16_t)hi << 8 | lo);
  }
  for (uint8_t i = 0; i < 3; i++) {
    v[i] = raw[i] * ACC_G_PER_LSB;
    v[3 + i] = raw[4 + i] * GYRO_RAD_S_PER_LSB;
  }
  return true;
}

static void sendFrameBytes(size_t n) {
  if (n > 0) {
    Serial.write(frameBuf, n);
  }
}

static void handleCommand(int c) {
  switch (c) {
    case 't':
      if (binaryMode) {
        sendFrameBytes(hartool_framer_flush(&framer, frameBuf));
      }
      binaryMode = false;
      break;
    case 'b':
      if (binaryMode) {
        sendFrameBytes(hartool_framer_flush(&framer, frameBuf));
      }
      binaryMode = true;
      Serial.write((uint8_t)0);  // delimiter: the host decoder syncs on the next frame
      break;
    case 's':
      running = true;
      nextDueUs = micros();
      break;
    case 'p':
      running = false;
      if (binaryMode) {
        sendFrameBytes(hartool_framer_flush(&framer, frameBuf));
      }
      break;
    default:
      break;  // anything else (line endings from a terminal) is ignored
  }
}

static void takeSample(uint32_t tMs) {
  float v[6];
  if (!imuOk || !mpuRead(v)) {
    // A failed read is a lost sample: binary seq jumps so the host counts it as dropped.
    sendFrameBytes(hartool_framer_skip(&framer, 1, frameBuf));
    return;
  }
  if (binaryMode) {
    sendFrameBytes(hartool_framer_add(&framer, v, tMs, frameBuf));
  } else {
    framer.seq++;  // keep counting so a later switch to binary has meaningful seq numbers
    size_t n = hartool_format_text_line(lineBuf, sizeof lineBuf, v, 6, TEXT_TIMESTAMP, tMs, DECIMALS);
    Serial.write((const uint8_t *)lineBuf, n);
  }
}

void setup() {
  Serial.begin(BAUD);
  uint32_t t0 = millis();
  while (!Serial && millis() - t0 < 2000) {
    // native-USB boards (Nano 33 IoT): wait briefly for the host, but never hang without one
  }
  pinMode(LED_BUILTIN, OUTPUT);
  Wire.begin();
  Wire.setClock(400000);
  imuOk = mpuInit();
  if (!imuOk && !binaryMode) {
    Serial.print("# hartool: no MPU6050 at 0x68\r\n");  // a header-like line: the host skips it
  }
  hartool_framer_init(&framer, 6, SCALES, SAMPLES_PER_FRAME, 1, 0);
  nextDueUs = micros();
}

void loop() {
  while (Serial.available() > 0) {
    handleCommand(Serial.read());
  }
  if (!running) {
    return;
  }
  uint32_t now = micros();
  // Unsigned difference handles the 71-minute micros() wrap; "not yet due" shows as a huge value.
  uint32_t late = now - nextDueUs;
  if (late >= 0x80000000UL) {
    return;
  }
  nextDueUs += PERIOD_US;
  if (late >= PERIOD_US) {
    // Fell a whole period or more behind (USB stall, long I2C error): drop those ticks instead of
    // bursting to catch up, and report them as a sequence gap.
    uint32_t missed = late / PERIOD_US;
    nextDueUs += missed * PERIOD_US;
    sendFrameBytes(hartool_framer_skip(&framer, (uint16_t)missed, frameBuf));
  }
  takeSample(millis());
  if (++tickCount % RATE_HZ == 0) {
    digitalWrite(LED_BUILTIN, !digitalRead(LED_BUILTIN));  // heartbeat: toggles once a second
  }
}
