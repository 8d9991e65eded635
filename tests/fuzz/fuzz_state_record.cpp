// SPDX-License-Identifier: MIT
// StateRecord::load over an in-memory store holding the input (two slots),
// then a save and a reload that must give back what was saved. When the first
// byte is odd, both slots' CRCs are repaired after it is dropped, so mutated
// fields get past the checksum.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.h"
#include "tether/state_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether;
    if (size == 0) {
        return 0;
    }
    const bool repair = (data[0] & 1u) != 0;
    fuzz::MemoryStorage storage(data + 1, size - 1, 2 * StateRecord::kSlotSize);
    if (repair) {
        for (std::size_t slot = 0; slot < 2; ++slot) {
            fuzz::repair_block_crc(storage.bytes(), slot * StateRecord::kSlotSize,
                                   StateRecord::kSlotSize, StateRecord::kSlotSize - 4);
        }
    }
    StateRecord record(storage);
    PersistentState state;
    LoadSource source = LoadSource::kDefaults;
    if (record.load(&state, &source) != Status::kOk) {
        __builtin_trap();
    }
    state.reconnect_attempts += 1;
    if (record.save(state) != Status::kOk) {
        __builtin_trap();
    }
    StateRecord again(storage);
    PersistentState reloaded;
    if (again.load(&reloaded, &source) != Status::kOk || reloaded != state ||
        source == LoadSource::kDefaults) {
        __builtin_trap();
    }
    return 0;
}
