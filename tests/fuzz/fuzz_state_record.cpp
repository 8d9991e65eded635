// StateRecord::load over an in-memory store holding the input (two slots),
// then a save and a reload that must give back what was saved.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.h"
#include "tether/state_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tether;
    fuzz::MemoryStorage storage(data, size, 2 * StateRecord::kSlotSize);
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
