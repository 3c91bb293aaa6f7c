// hartool_imu_classify: classify activities on the board itself with a library from `hartool export c`.
//
// Board: Arduino Nano 33 BLE Sense (nRF52840, Cortex-M4F, 256 KB RAM) and its on-board IMU: LSM9DS1 on Rev1
// (library Arduino_LSM9DS1), BMI270 on Rev2 (library Arduino_BMI270_BMM150: build with -DHARTOOL_IMU_BMI270 or
// change the include). Install the exported library with Sketch > Include Library > Add .ZIP Library (or copy
// its folder into Arduino/libraries). README "Run the model on the board" walks through it.
//
// 50 Hz sampling scheduled with micros(). Each completed window (every HARTOOL_STRIDE samples) prints one line
//   # hartool: window 12 WALKING 0.934
// The leading '#' makes `hartool stream` skip the line as a comment (a prediction frame type in the wire
// protocol is not there yet), so a serial monitor shows the board's own predictions.

#ifdef HARTOOL_IMU_BMI270
#include <Arduino_BMI270_BMM150.h>
#else
#include <Arduino_LSM9DS1.h>
#endif
#include <hartool_model.h>

static const float DEG_TO_RAD_F = 0.017453292519943295f;
static const uint32_t PERIOD_US = 1000000UL / HARTOOL_SAMPLE_RATE_HZ;

static hartool_stream stream;  // HARTOOL_STREAM_BYTES of state, no malloc
static uint32_t nextDueUs;
static uint32_t dropped = 0;

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
  nextDueUs = micros();
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

void loop() {
  uint32_t late = micros() - nextDueUs;
  if (late >= 0x80000000UL) return;  // not yet due (unsigned difference handles the micros() wrap)
  nextDueUs += PERIOD_US;
  float v[HARTOOL_CHANNELS];
  if (!readSample(v)) {
    dropped++;  // no fresh sample this tick: counted, the window goes on with the next one
    return;
  }
  hartool_result r;
  if (hartool_stream_push(&stream, v, &r)) {
    Serial.print("# hartool: window ");
    Serial.print(r.window);
    Serial.print(' ');
    Serial.print(hartool_labels[r.label]);
    Serial.print(' ');
    Serial.print(r.probs[r.label], 3);
    Serial.print(" dropped ");
    Serial.println(dropped);
  }
}
