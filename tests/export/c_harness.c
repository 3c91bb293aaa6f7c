/* Host/board test harness: reads each graph input's bytes from stdin, invokes, writes each output's bytes. */
#include <stdio.h>

#include "hartool_graph.h"

int main(void) {
  for (;;) {
    int i;
    for (i = 0; i < HARTOOL_GRAPH_INPUTS; ++i)
      if (fread(hartool_graph_input(i), 1, hartool_graph_input_bytes[i], stdin) != hartool_graph_input_bytes[i])
        return 0;
    hartool_graph_invoke();
    for (i = 0; i < HARTOOL_GRAPH_OUTPUTS; ++i)
      fwrite(hartool_graph_output(i), 1, hartool_graph_output_bytes[i], stdout);
  }
}
