// Compile-cost sample (a): the umbrella header alone.
#include <loopbridge/loopbridge.hpp>
