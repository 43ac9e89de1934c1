# Loaded only if a search accepted Boost 1.74, which loopbridge never does.
message(FATAL_ERROR "the stand-in for Boost 1.74 was accepted: loopbridge asks for Boost 1.81 or newer")
