/* Runs a sketch on the host: setup(), then loop() with the clock one sample period further each call, until the
 * IMU stand-in's stdin ends. Test support only. */
#include <stdlib.h>

#include "Arduino.h"
#include "Arduino_LSM9DS1.h"
#include "hartool_model.h"

uint32_t hartool_shim_us = 0;
const char *hartool_shim_commands = NULL;
int hartool_shim_done = 0;
ShimSerial Serial;
ShimImu IMU;

void setup();
void loop();

int main() {
  hartool_shim_commands = getenv("HARTOOL_SHIM_COMMANDS");
  setup();
  while (!hartool_shim_done) {
    loop();
    hartool_shim_us += 1000000u / HARTOOL_SAMPLE_RATE_HZ;
  }
  fflush(stdout);
  return 0;
}
