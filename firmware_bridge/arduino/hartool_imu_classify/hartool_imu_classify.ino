// hartool_imu_classify: classify activities on the board itself with a library from `hartool export c`, and send
// each window's prediction in the hartool wire protocol (firmware_bridge/PROTOCOL.md, "Prediction messages").
//
// Board: Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F, 256 KB RAM) and its on-board IMU: LSM9DS1 on Rev1
// (library Arduino_LSM9DS1), BMI270 on Rev2 (library Arduino_BMI270_BMM150: build with -DHARTOOL_IMU_BMI270 or
// change the include). Install the exported library with Sketch > Include Library > Add .ZIP Library (or copy
// its folder into Arduino/libraries), and copy hartool_frame.h from ../hartool_imu_stream into this folder (the
// wire encoder; the Arduino IDE compiles a sketch's own folder only). README "Run the model on the board" walks
// through it.
//
// 50 Hz sampling scheduled with micros(). Each completed window (every HARTOOL_STRIDE samples) sends one
// prediction message: a text line such as
//   pred,12,15360,3,6,3,5,13,218,10,8
// (window, device ms, class index, class count, probability x 256 per class) or, after the host's 'b', the same
// as a binary frame. `hartool stream BUNDLE --port ...` shows and publishes them with the bundle's labels. With
// HARTOOL_SEND_SAMPLES 1 the raw samples go out too (text lines / binary frames), for `hartool record`.
// Host commands: 'b' binary, 't' text (the default: readable in a serial monitor).

#ifdef HARTOOL_IMU_BMI270
#include <Arduino_BMI270_BMM150.h>
#else
#include <Arduino_LSM9DS1.h>
#endif
#include <hartool_model.h>

#include "hartool_frame.h"

#ifndef HARTOOL_SEND_SAMPLES
#define HARTOOL_SEND_SAMPLES 0
#endif
#if HARTOOL_CLASSES > HARTOOL_MAX_CLASSES
#error "more classes than hartool_frame.h's HARTOOL_MAX_CLASSES: define it larger before the include"
#endif

static const float DEG_TO_RAD_F = 0.017453292519943295f;
static const uint32_t PERIOD_US = 1000000UL / HARTOOL_SAMPLE_RATE_HZ;

static hartool_stream stream;  // HARTOOL_STREAM_BYTES of state, no malloc
static uint32_t nextDueUs;
static uint32_t dropped = 0;  // IMU not ready when a sample was due
static bool binaryMode = false;
static uint8_t wireBuf[HARTOOL_PREDICTION_FRAME_MAX(HARTOOL_CLASSES)];
static char lineBuf[HARTOOL_PREDICTION_LINE_MAX(HARTOOL_CLASSES)];
#if HARTOOL_SEND_SAMPLES
static const float SCALES[6] = {HARTOOL_ACC_SCALE_G,      HARTOOL_ACC_SCALE_G,      HARTOOL_ACC_SCALE_G,
                                HARTOOL_GYRO_SCALE_RAD_S, HARTOOL_GYRO_SCALE_RAD_S, HARTOOL_GYRO_SCALE_RAD_S};
static hartool_framer framer;
static uint8_t frameBuf[HARTOOL_FRAME_MAX(HARTOOL_MAX_CH, HARTOOL_MAX_PER_FRAME)];
static char sampleLine[HARTOOL_TEXT_LINE_MAX(HARTOOL_CHANNELS, 4)];
#endif

void setup() {
  Serial.begin(115200);
  uint32_t t0 = millis();
  while (!Serial && millis() - t0 < 2000) {
    // native USB: wait briefly for a host, never hang without one
  }
  if (!IMU.begin()) {
    Serial.println("# hartool: no IMU found");
    while (true) {
    }
  }
  hartool_stream_init(&stream);
#if HARTOOL_SEND_SAMPLES
  hartool_framer_init(&framer, HARTOOL_CHANNELS, SCALES, 1, 1, 0);
#endif
  nextDueUs = micros();
}

static void handleCommands() {
  while (Serial.available() > 0) {
    int c = Serial.read();
    if (c == 'b' && !binaryMode) {
      binaryMode = true;
      Serial.write((uint8_t)0);  // a delimiter first: the host syncs on the next frame
    } else if (c == 't') {
      binaryMode = false;
    }
  }
}

// One sample in the bundle's channel order and units: acc x, y, z in g, gyro x, y, z in rad/s.
static bool readSample(float v[HARTOOL_CHANNELS]) {
  float gx, gy, gz;
  if (!IMU.accelerationAvailable() || !IMU.gyroscopeAvailable()) return false;
  IMU.readAcceleration(v[0], v[1], v[2]);  // g
  IMU.readGyroscope(gx, gy, gz);           // degrees per second
  v[3] = gx * DEG_TO_RAD_F;
  v[4] = gy * DEG_TO_RAD_F;
  v[5] = gz * DEG_TO_RAD_F;
  return true;
}

#if HARTOOL_SEND_SAMPLES
static void sendSample(const float v[HARTOOL_CHANNELS], uint32_t tMs) {
  size_t n;
  if (binaryMode) {
    n = hartool_framer_add(&framer, v, tMs, frameBuf);
    Serial.write(frameBuf, n);
  } else {
    framer.seq++;  // sequence numbers keep counting in text mode (PROTOCOL.md)
    n = hartool_format_text_line(sampleLine, sizeof sampleLine, v, HARTOOL_CHANNELS, 1, tMs, 4);
    Serial.write((const uint8_t *)sampleLine, n);
  }
}
#endif

static void sendPrediction(const hartool_result &r, uint32_t tMs) {
  size_t n;
  if (binaryMode) {
    n = hartool_encode_prediction(wireBuf, (uint32_t)r.window, 1, tMs, (uint8_t)r.label, HARTOOL_CLASSES, r.probs);
    Serial.write(wireBuf, n);
  } else {
    n = hartool_format_prediction_line(lineBuf, sizeof lineBuf, (uint32_t)r.window, 1, tMs, (uint8_t)r.label,
                                       HARTOOL_CLASSES, r.probs);
    Serial.write((const uint8_t *)lineBuf, n);
  }
}

void loop() {
  handleCommands();
  uint32_t late = micros() - nextDueUs;
  if (late >= 0x80000000UL) return;  // not yet due (unsigned difference handles the micros() wrap)
  nextDueUs += PERIOD_US;
  float v[HARTOOL_CHANNELS];
  if (!readSample(v)) {
    dropped++;  // no fresh sample this tick: counted, the window goes on with the next one
    return;
  }
  uint32_t tMs = millis();
#if HARTOOL_SEND_SAMPLES
  sendSample(v, tMs);
#endif
  hartool_result r;
  if (hartool_stream_push(&stream, v, &r)) {
    sendPrediction(r, tMs);
  }
}
