/* A tiny host stand-in for the Arduino API the sketches use (Serial, millis, micros), so a sketch compiles and
 * runs with the host g++: Serial writes go to stdout, host commands come from HARTOOL_SHIM_COMMANDS, and the
 * clock advances one sample period per loop() call. Test support only: not firmware. */
#ifndef HARTOOL_ARDUINO_SHIM_H
#define HARTOOL_ARDUINO_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern uint32_t hartool_shim_us;
extern const char *hartool_shim_commands;

static inline uint32_t micros() { return hartool_shim_us; }
static inline uint32_t millis() { return hartool_shim_us / 1000u; }

class ShimSerial {
 public:
  void begin(unsigned long) {}
  explicit operator bool() const { return true; }
  int available() { return (hartool_shim_commands && *hartool_shim_commands) ? 1 : 0; }
  int read() { return available() ? (unsigned char)*hartool_shim_commands++ : -1; }
  size_t write(uint8_t b) { return fwrite(&b, 1, 1, stdout); }
  size_t write(const uint8_t *p, size_t n) { return fwrite(p, 1, n, stdout); }
  size_t print(const char *s) { return fwrite(s, 1, strlen(s), stdout); }
  size_t println(const char *s) { return print(s) + print("\r\n"); }
};
extern ShimSerial Serial;
#endif
