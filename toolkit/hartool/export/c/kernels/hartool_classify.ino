// hartool_classify: feed IMU samples to the exported model and print one prediction per window.
// This example reads samples as text lines "ax,ay,az,gx,gy,gz" (the bundle's channel order and units) from
// Serial, so it runs on any board; firmware_bridge/arduino/hartool_imu_classify reads a real IMU instead.
#include <hartool_model.h>

static hartool_stream stream;  // HARTOOL_STREAM_BYTES of state, no malloc

void setup() {
  Serial.begin(115200);
  hartool_stream_init(&stream);
}

void loop() {
  static char line[128];
  static size_t len = 0;
  while (Serial.available()) {
    char c = (char)Serial.read();
    if (c != '\n' && len < sizeof(line) - 1) { line[len++] = c; continue; }
    line[len] = '\0';
    len = 0;
    float sample[HARTOOL_CHANNELS];
    char *p = line;
    int n = 0;
    while (n < HARTOOL_CHANNELS) {
      char *end;
      sample[n] = strtod(p, &end);
      if (end == p) break;
      ++n;
      p = (*end == ',') ? end + 1 : end;
    }
    if (n != HARTOOL_CHANNELS) continue;  // not a sample line: skipped
    hartool_result r;
    if (hartool_stream_push(&stream, sample, &r)) {
      Serial.print(r.window);
      Serial.print(' ');
      Serial.print(hartool_labels[r.label]);
      Serial.print(' ');
      Serial.println(r.probs[r.label], 3);
    }
  }
}
