// SPDX-License-Identifier: MIT
// DeviceStateRecord::load over an in-memory store holding the input (two
// slots of documents up to 64 bytes), then a save and a reload that must give
// back what was saved. When the first byte is odd, each slot's CRC is repaired
// where its used length puts it, so mutated fields get past the checksum.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_support.h"
#include "tether/device_state_record.h"

namespace {

constexpr std::size_t kMax = 64;

struct Documents {
    Documents() {
        data.desired.data = buffers[0];
        data.reported.data = buffers[1];
        data.local.data = buffers[2];
        data.in_flight_body.data = buffers[3];
    }
    tether::DeviceStateData data;
    char buffers[4][kMax] = {};
};

bool same(const tether::StoredDocument& a, const tether::StoredDocument& b) {
    return a.size == b.size && std::memcmp(a.data, b.data, a.size) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether;
    if (size == 0) {
        return 0;
    }
    const bool repair = (data[0] & 1u) != 0;
    const std::size_t slot = DeviceStateRecord::slot_size(kMax);
    fuzz::MemoryStorage storage(data + 1, size - 1, 2 * slot);
    if (repair) {
        for (std::size_t i = 0; i < 2; ++i) {
            std::vector<std::uint8_t>* bytes = storage.bytes();
            if (bytes->size() < i * slot + 16) {
                continue;
            }
            const std::uint32_t used = fuzz::load_u32(bytes->data() + i * slot + 12);
            if (used >= DeviceStateRecord::kHeaderSize + 4 && used <= slot) {
                fuzz::repair_block_crc(bytes, i * slot, used, used - 4);
            }
        }
    }
    DeviceStateRecord record(storage, kMax);
    Documents loaded;
    LoadSource source = LoadSource::kDefaults;
    if (record.load(&loaded.data, &source) != Status::kOk) {
        __builtin_trap();
    }
    for (const StoredDocument* document : {&loaded.data.desired, &loaded.data.reported,
                                           &loaded.data.local, &loaded.data.in_flight_body}) {
        if (document->size > kMax) {
            __builtin_trap();
        }
    }
    loaded.data.desired_version += 1;
    if (loaded.data.in_flight) {
        for (std::size_t i = 0; i < DeviceStateData::kReportIdLength; ++i) {
            if (loaded.data.in_flight_id[i] == '\0') {
                loaded.data.in_flight_id[i] = '0';  // a loaded id may hold any bytes
            }
        }
    }
    if (record.save(loaded.data) != Status::kOk) {
        __builtin_trap();
    }
    DeviceStateRecord again(storage, kMax);
    Documents reloaded;
    if (again.load(&reloaded.data, &source) != Status::kOk || source == LoadSource::kDefaults ||
        reloaded.data.desired_version != loaded.data.desired_version ||
        reloaded.data.reported_version != loaded.data.reported_version ||
        reloaded.data.in_flight != loaded.data.in_flight ||
        !same(reloaded.data.desired, loaded.data.desired) ||
        !same(reloaded.data.reported, loaded.data.reported) ||
        !same(reloaded.data.local, loaded.data.local) ||
        !same(reloaded.data.in_flight_body, loaded.data.in_flight_body)) {
        __builtin_trap();
    }
    return 0;
}
