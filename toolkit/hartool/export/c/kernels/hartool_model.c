/* ---- hartool API (static part): preprocessing, windowing, streaming. No malloc. ---- */
#include <string.h>

/* Standardise (and clip) rows of a row-major window into the graph's float input; the window may be a ring
 * buffer whose oldest row is `first` (the same arithmetic, in float32, as hartool's preprocess()). */
static void hartool_load(const float *window, int first) {
  float *dst = (float *)hartool_graph_input(0);
  int r, c;
  for (r = 0; r < HARTOOL_WINDOW; ++r) {
    const float *row = window + ((first + r) % HARTOOL_WINDOW) * HARTOOL_CHANNELS;
    for (c = 0; c < HARTOOL_CHANNELS; ++c) {
      float v = (row[c] - hartool_mean[c]) / hartool_std[c];
#ifdef HARTOOL_CLIP
      if (v > HARTOOL_CLIP) v = HARTOOL_CLIP;
      else if (v < -HARTOOL_CLIP) v = -HARTOOL_CLIP;
#endif
      *dst++ = v;
    }
  }
}

static int hartool_run(float *probs) {
  const float *p;
  int k, best = 0;
  hartool_graph_invoke();
  p = (const float *)hartool_graph_output(HARTOOL_PROBS_OUTPUT);
  for (k = 0; k < HARTOOL_CLASSES; ++k) {
    if (probs) probs[k] = p[k];
    if (p[k] > p[best]) best = k;
  }
  return best;
}

int hartool_classify(const float *window, float *probs) {
  hartool_load(window, 0);
  return hartool_run(probs);
}

void hartool_stream_init(hartool_stream *s) {
  memset(s, 0, sizeof(*s));
}

int hartool_stream_push(hartool_stream *s, const float *sample, hartool_result *out) {
  memcpy(s->ring + (s->samples % HARTOOL_WINDOW) * HARTOOL_CHANNELS, sample, sizeof(float) * HARTOOL_CHANNELS);
  s->samples++;
  if (s->samples < HARTOOL_WINDOW || (s->samples - HARTOOL_WINDOW) % HARTOOL_STRIDE != 0) return 0;
  hartool_load(s->ring, (int)(s->samples % HARTOOL_WINDOW));
  out->label = hartool_run(out->probs);
  out->window = s->windows++;
  return 1;
}
