// A clean stop on SIGINT / SIGTERM: the handlers only record the signal; the training loop asks
// after each step, all ranks agree (a signal may reach some ranks only), and the run saves a
// checkpoint and exits 0.
#pragma once
#include "parallel/communicator.h"

namespace ph {

// Installs SIGINT/SIGTERM handlers that ask the loop to stop after the current step.
void install_stop_handlers();

// The signal any rank of `world` received (0: none); collective over world.
int agreed_stop_signal(Communicator& world);

}  // namespace ph
