/* Host stand-in for the Arduino_LSM9DS1 IMU: samples (acc in g, gyro in deg/s, 6 float32 each) come from stdin;
 * when stdin ends the shim's main() stops calling loop(). Test support only. */
#ifndef HARTOOL_IMU_SHIM_H
#define HARTOOL_IMU_SHIM_H
#include <stdio.h>

extern int hartool_shim_done;

class ShimImu {
 public:
  int begin() { return 1; }
  int accelerationAvailable() { return fill(); }
  int gyroscopeAvailable() { return fill(); }
  void readAcceleration(float &x, float &y, float &z) { x = v_[0]; y = v_[1]; z = v_[2]; have_ = 0; }
  void readGyroscope(float &x, float &y, float &z) { x = v_[3]; y = v_[4]; z = v_[5]; }

 private:
  int fill() {
    if (!have_) {
      have_ = fread(v_, sizeof(float), 6, stdin) == 6;
      if (!have_) hartool_shim_done = 1;
    }
    return have_;
  }
  float v_[6];
  int have_ = 0;
};
extern ShimImu IMU;
#endif
