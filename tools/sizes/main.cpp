// tether-sizes: the memory tetherd reserves at startup, for make footprint.
// Prints "name bytes" lines: the buffers sized from the configuration
// defaults exactly as tetherd's setup sizes them (apps/tetherd/main.cpp), and
// sizeof the long-lived objects it holds. Compiled per architecture, so the
// object sizes are the target's.
#include <cstddef>
#include <cstdio>

#include "config.h"
#include "datagram_input.h"
#include "downlink_output.h"
#include "health.h"
#include "sd_notify.h"
#include "status_file.h"
#include "status_led.h"
#include "tether/client.h"
#include "tether/outbox.h"
#include "tether/port/credentials.h"
#include "tether/port/entropy.h"
#include "tether/port/file_storage.h"
#include "tether/port/poll_loop.h"
#include "tether/port/posix_resolver.h"
#include "tether/port/posix_transport.h"
#include "tether/spool.h"
#include "tether/state_record.h"

namespace {

void print(const char* kind, const char* name, std::size_t bytes) {
    std::printf("%s %s %zu\n", kind, name, bytes);
}

}  // namespace

int main() {
    using namespace tether;
    const daemon::DaemonConfig config;
    const std::size_t max_message = config.outbox.max_message_size;

    print("buffer", "outbox", config.outbox.size_bytes);
    print("buffer", "rx", max_message + 16);
    print("buffer", "tx", max_message + 64 * 1024);
    print("buffer", "spool", max_message + Spool::kRecordOverhead + 64 * 1024);
    print("buffer", "datagram_input", max_message);
    print("buffer", "downlink_queue", max_message * 4 + 4096);

    print("object", "tether::Client", sizeof(Client));
    print("object", "tether::port::TlsContext", sizeof(port::TlsContext));
    print("object", "tether::port::PosixTransport", sizeof(port::PosixTransport));
    print("object", "tether::port::PosixResolver", sizeof(port::PosixResolver));
    print("object", "tether::port::Entropy", sizeof(port::Entropy));
    print("object", "tether::port::FileStorage x2", 2 * sizeof(port::FileStorage));
    print("object", "tether::port::PollLoop", sizeof(port::PollLoop));
    print("object", "tether::port::TokenFileCredentials", sizeof(port::TokenFileCredentials));
    print("object", "tether::StateRecord", sizeof(StateRecord));
    print("object", "tether::Spool", sizeof(Spool));
    print("object", "tether::daemon::DaemonConfig", sizeof(daemon::DaemonConfig));
    print("object", "tether::daemon::DatagramInput", sizeof(daemon::DatagramInput));
    print("object", "tether::daemon::DownlinkOutput", sizeof(daemon::DownlinkOutput));
    print("object", "tether::daemon::HealthCollector", sizeof(daemon::HealthCollector));
    print("object", "tether::daemon::StatusFile", sizeof(daemon::StatusFile));
    print("object", "tether::daemon::StatusLed", sizeof(daemon::StatusLed));
    print("object", "tether::daemon::Notifier", sizeof(daemon::Notifier));
    return 0;
}
