// SPDX-License-Identifier: MIT
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
    daemon::DaemonConfig config;
    config.spool.enabled = true;  // the largest default footprint
    const std::size_t max_message = config.outbox.max_message_size;
    port::PosixLinkSettings settings;
    daemon::to_link_settings(config, &settings);
    const DurableLinkSizes sizes = DurableLinkSizes::for_config(settings.link);

    print("buffer", "outbox", sizes.outbox);
    print("buffer", "rx", sizes.rx);
    print("buffer", "tx", sizes.tx);
    print("buffer", "spool", sizes.spool);
    print("buffer", "device_state", sizes.device_state);  // 0 unless device state is on
    print("buffer", "datagram_input", max_message);
    print("buffer", "downlink_queue", max_message * 4 + 4096);

    // The link's owners hold the rest by value: DurableLink the Client, the
    // Spool and the StateRecord; PosixLink the Entropy, the TlsContext, the
    // resolver and both FileStorages. The transport and the credentials are
    // separate allocations.
    print("object", "tether::DurableLink", sizeof(DurableLink));
    print("object", "tether::port::PosixLink", sizeof(port::PosixLink));
    print("object", "tether::port::PosixTransport", sizeof(port::PosixTransport));
    print("object", "tether::port::TokenFileCredentials", sizeof(port::TokenFileCredentials));
    print("object", "tether::port::PollLoop", sizeof(port::PollLoop));
    print("object", "tether::daemon::DaemonConfig", sizeof(daemon::DaemonConfig));
    print("object", "tether::daemon::DatagramInput", sizeof(daemon::DatagramInput));
    print("object", "tether::daemon::DownlinkOutput", sizeof(daemon::DownlinkOutput));
    print("object", "tether::daemon::HealthCollector", sizeof(daemon::HealthCollector));
    print("object", "tether::daemon::StatusFile", sizeof(daemon::StatusFile));
    print("object", "tether::daemon::StatusLed", sizeof(daemon::StatusLed));
    print("object", "tether::daemon::Notifier", sizeof(daemon::Notifier));
    return 0;
}
