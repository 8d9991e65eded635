// SPDX-License-Identifier: MIT
#include "health.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

namespace tether::daemon {
namespace {

// Large enough for the head of /proc/meminfo (MemAvailable is its third
// line); every other file read here is a single short line.
constexpr std::size_t kFileBuffer = 512;
constexpr std::size_t kPathBuffer = 256;
// Directory entries considered per scan; the output keeps the first
// kMaxZones / kMaxLinks of them in order.
constexpr std::size_t kMaxCandidates = 32;

bool join(char* out, std::size_t capacity, std::initializer_list<const char*> parts) {
    std::size_t length = 0;
    for (const char* part : parts) {
        const std::size_t part_length = std::strlen(part);
        if (length + part_length >= capacity) {
            return false;
        }
        std::memcpy(out + length, part, part_length);
        length += part_length;
    }
    out[length] = '\0';
    return true;
}

// Reads up to capacity - 1 bytes and NUL-terminates them. Returns the length,
// or -1 when the file cannot be opened or read.
long read_file(const char* path, char* buffer, std::size_t capacity) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    std::size_t length = 0;
    bool failed = false;
    while (length + 1 < capacity) {
        const ssize_t got = ::read(fd, buffer + length, capacity - 1 - length);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            failed = true;
            break;
        }
        if (got == 0) {
            break;
        }
        length += static_cast<std::size_t>(got);
    }
    ::close(fd);
    if (failed) {
        return -1;
    }
    buffer[length] = '\0';
    return static_cast<long>(length);
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Parses digits at *cursor into *value, refusing overflow past `limit`.
bool parse_digits(const char** cursor, std::uint64_t limit, std::uint64_t* value) {
    const char* p = *cursor;
    if (!is_digit(*p)) {
        return false;
    }
    std::uint64_t result = 0;
    for (; is_digit(*p); ++p) {
        const auto digit = static_cast<std::uint64_t>(*p - '0');
        if (result > (limit - digit) / 10) {
            return false;
        }
        result = result * 10 + digit;
    }
    *value = result;
    *cursor = p;
    return true;
}

// "123" or "123.4567" as hundredths (further digits truncated).
bool parse_centi(const char** cursor, std::uint64_t* value) {
    std::uint64_t whole = 0;
    if (!parse_digits(cursor, UINT64_MAX / 100 - 1, &whole)) {
        return false;
    }
    std::uint64_t fraction = 0;
    const char* p = *cursor;
    if (*p == '.') {
        ++p;
        if (!is_digit(*p)) {
            return false;
        }
        for (std::uint64_t scale = 10; is_digit(*p); ++p, scale /= 10) {
            fraction += scale * static_cast<std::uint64_t>(*p - '0');
        }
    }
    *value = whole * 100 + fraction;
    *cursor = p;
    return true;
}

// True when only an optional newline is left.
bool at_line_end(const char* p) {
    return p[0] == '\0' || (p[0] == '\n' && p[1] == '\0');
}

bool parse_int32_line(const char* text, std::int32_t* value) {
    const bool negative = *text == '-';
    const char* p = negative ? text + 1 : text;
    std::uint64_t magnitude = 0;
    if (!parse_digits(&p, negative ? 2147483648u : 2147483647u, &magnitude) || !at_line_end(p)) {
        return false;
    }
    *value = static_cast<std::int32_t>(negative ? -static_cast<std::int64_t>(magnitude)
                                                : static_cast<std::int64_t>(magnitude));
    return true;
}

// Names go into JSON keys unescaped, so only printable ASCII without quote
// or backslash is accepted.
bool is_safe_name(const char* name, std::size_t max_length) {
    std::size_t length = 0;
    for (; name[length] != '\0'; ++length) {
        const char c = name[length];
        if (c <= ' ' || c > '~' || c == '"' || c == '\\' || length == max_length) {
            return false;
        }
    }
    return length > 0;
}

void strip_newline(char* text, long length) {
    if (length > 0 && text[length - 1] == '\n') {
        text[length - 1] = '\0';
    }
}

bool is_lowercase_word(const char* text, std::size_t max_length) {
    std::size_t length = 0;
    for (; text[length] != '\0'; ++length) {
        if (text[length] < 'a' || text[length] > 'z' || length == max_length) {
            return false;
        }
    }
    return length > 0;
}

// "thermal_zone<N>" -> N.
bool zone_number(const char* name, std::uint64_t* number) {
    static constexpr char kPrefix[] = "thermal_zone";
    if (std::strncmp(name, kPrefix, sizeof kPrefix - 1) != 0) {
        return false;
    }
    const char* p = name + sizeof kPrefix - 1;
    return parse_digits(&p, 0xFFFFFFFFu, number) && *p == '\0';
}

}  // namespace

HealthCollector::HealthCollector(const char* root, const char* const* interfaces,
                                 std::size_t interface_count)
    : root_(root), interfaces_(interfaces), interface_count_(interface_count) {}

HealthCollector::~HealthCollector() {
    if (thermal_dir_ != nullptr) {
        ::closedir(thermal_dir_);
    }
    if (net_dir_ != nullptr) {
        ::closedir(net_dir_);
    }
}

bool HealthCollector::path(char* out, std::size_t capacity, const char* format,
                           const char* name) const {
    // `format` holds one '%' where `name` goes; the split keeps the callers
    // readable without a printf-style format.
    const char* mark = std::strchr(format, '%');
    if (mark == nullptr) {
        return join(out, capacity, {root_, format});
    }
    char head[kPathBuffer];
    const auto head_length = static_cast<std::size_t>(mark - format);
    std::memcpy(head, format, head_length);
    head[head_length] = '\0';
    return join(out, capacity, {root_, head, name, mark + 1});
}

DIR* HealthCollector::open_dir(DIR** stream, const char* suffix) {
    // Opened once and rewound on later samples: opendir allocates, rewinddir
    // and readdir do not.
    if (*stream != nullptr) {
        ::rewinddir(*stream);
        return *stream;
    }
    char dir_path[kPathBuffer];
    if (path(dir_path, sizeof dir_path, suffix, "")) {
        *stream = ::opendir(dir_path);
    }
    return *stream;
}

bool HealthCollector::sample(HealthSample* out) {
    *out = HealthSample{};
    read_uptime(out);
    read_load(out);
    read_memory(out);
    read_zones(out);
    read_links(out);
    return out->has_uptime || out->has_load || out->has_mem_total || out->has_mem_available ||
           out->zone_count > 0 || out->link_count > 0;
}

void HealthCollector::read_uptime(HealthSample* out) const {
    char file[kPathBuffer];
    char text[kFileBuffer];
    if (!path(file, sizeof file, "/proc/uptime", "") || read_file(file, text, sizeof text) < 0) {
        return;
    }
    const char* p = text;
    std::uint64_t centi = 0;
    if (parse_centi(&p, &centi) && (*p == ' ' || at_line_end(p))) {
        out->uptime_centiseconds = centi;
        out->has_uptime = true;
    }
}

void HealthCollector::read_load(HealthSample* out) const {
    char file[kPathBuffer];
    char text[kFileBuffer];
    if (!path(file, sizeof file, "/proc/loadavg", "") || read_file(file, text, sizeof text) < 0) {
        return;
    }
    const char* p = text;
    std::uint32_t load[3] = {};
    for (std::uint32_t& value : load) {
        std::uint64_t centi = 0;
        if (!parse_centi(&p, &centi) || centi > UINT32_MAX || (*p != ' ' && !at_line_end(p))) {
            return;
        }
        value = static_cast<std::uint32_t>(centi);
        if (*p == ' ') {
            ++p;
        }
    }
    std::memcpy(out->load_centi, load, sizeof load);
    out->has_load = true;
}

void HealthCollector::read_memory(HealthSample* out) const {
    char file[kPathBuffer];
    char text[kFileBuffer];
    if (!path(file, sizeof file, "/proc/meminfo", "") || read_file(file, text, sizeof text) < 0) {
        return;
    }
    // Lines are "Key:   <digits> kB"; each key is judged on its own.
    for (const char* line = text; *line != '\0';) {
        const char* end = std::strchr(line, '\n');
        const bool complete = end != nullptr;
        bool* has = nullptr;
        std::uint64_t* value = nullptr;
        const char* p = nullptr;
        if (std::strncmp(line, "MemTotal:", 9) == 0) {
            has = &out->has_mem_total;
            value = &out->mem_total_kb;
            p = line + 9;
        } else if (std::strncmp(line, "MemAvailable:", 13) == 0) {
            has = &out->has_mem_available;
            value = &out->mem_available_kb;
            p = line + 13;
        }
        if (has != nullptr && complete) {
            while (*p == ' ') {
                ++p;
            }
            std::uint64_t kb = 0;
            if (parse_digits(&p, UINT64_MAX, &kb) && std::strncmp(p, " kB\n", 4) == 0) {
                *value = kb;
                *has = true;
            }
        }
        if (!complete) {
            break;
        }
        line = end + 1;
    }
}

void HealthCollector::read_zones(HealthSample* out) {
    DIR* dir = open_dir(&thermal_dir_, "/sys/class/thermal");
    if (dir == nullptr) {
        return;
    }
    std::uint64_t numbers[kMaxCandidates];
    std::size_t count = 0;
    for (const dirent* entry = ::readdir(dir); entry != nullptr && count < kMaxCandidates;
         entry = ::readdir(dir)) {
        std::uint64_t number = 0;
        if (zone_number(entry->d_name, &number)) {
            // Insertion sort: zones are reported in number order.
            std::size_t at = count++;
            for (; at > 0 && numbers[at - 1] > number; --at) {
                numbers[at] = numbers[at - 1];
            }
            numbers[at] = number;
        }
    }
    for (std::size_t i = 0; i < count && out->zone_count < HealthSample::kMaxZones; ++i) {
        char digits[24];
        std::size_t length = sizeof digits - 1;
        digits[length] = '\0';
        for (std::uint64_t rest = numbers[i]; length == sizeof digits - 1 || rest > 0; rest /= 10) {
            digits[--length] = static_cast<char>('0' + rest % 10);
        }
        char zone_dir[HealthSample::kMaxName + 1];
        join(zone_dir, sizeof zone_dir, {"thermal_zone", digits + length});

        char file[kPathBuffer];
        char text[kFileBuffer];
        std::int32_t millicelsius = 0;
        if (!path(file, sizeof file, "/sys/class/thermal/%/temp", zone_dir) ||
            read_file(file, text, sizeof text) < 0 || !parse_int32_line(text, &millicelsius)) {
            continue;
        }
        HealthSample::Zone& zone = out->zones[out->zone_count];
        zone.millicelsius = millicelsius;
        std::strcpy(zone.name, zone_dir);
        long got = -1;
        if (path(file, sizeof file, "/sys/class/thermal/%/type", zone_dir) &&
            (got = read_file(file, text, sizeof text)) >= 0) {
            strip_newline(text, got);
            bool unique = is_safe_name(text, HealthSample::kMaxName);
            for (std::size_t j = 0; unique && j < out->zone_count; ++j) {
                unique = std::strcmp(out->zones[j].name, text) != 0;
            }
            // Two zones of the same type keep their directory names, so the
            // JSON object never repeats a key.
            if (unique) {
                std::strcpy(zone.name, text);
            }
        }
        ++out->zone_count;
    }
}

void HealthCollector::read_links(HealthSample* out) {
    if (interface_count_ > 0) {
        for (std::size_t i = 0; i < interface_count_; ++i) {
            read_link(interfaces_[i], out);
        }
        return;
    }
    DIR* dir = open_dir(&net_dir_, "/sys/class/net");
    if (dir == nullptr) {
        return;
    }
    char names[kMaxCandidates][HealthSample::kMaxName + 1];
    std::size_t count = 0;
    for (const dirent* entry = ::readdir(dir); entry != nullptr && count < kMaxCandidates;
         entry = ::readdir(dir)) {
        const char* name = entry->d_name;
        if (name[0] == '.' || std::strcmp(name, "lo") == 0 ||
            !is_safe_name(name, HealthSample::kMaxName)) {
            continue;
        }
        std::size_t at = count++;
        for (; at > 0 && std::strcmp(names[at - 1], name) > 0; --at) {
            std::strcpy(names[at], names[at - 1]);
        }
        std::strcpy(names[at], name);
    }
    for (std::size_t i = 0; i < count; ++i) {
        read_link(names[i], out);
    }
}

void HealthCollector::read_link(const char* name, HealthSample* out) const {
    if (out->link_count == HealthSample::kMaxLinks || !is_safe_name(name, HealthSample::kMaxName)) {
        return;
    }
    char file[kPathBuffer];
    char text[kFileBuffer];
    long got = -1;
    if (!path(file, sizeof file, "/sys/class/net/%/operstate", name) ||
        (got = read_file(file, text, sizeof text)) < 0) {
        return;
    }
    strip_newline(text, got);
    if (!is_lowercase_word(text, HealthSample::kMaxState)) {
        return;
    }
    HealthSample::Link& link = out->links[out->link_count++];
    std::strcpy(link.name, name);
    std::strcpy(link.state, text);
    link.carrier = -1;
    if (path(file, sizeof file, "/sys/class/net/%/carrier", name) &&
        read_file(file, text, sizeof text) >= 0 && (text[0] == '0' || text[0] == '1') &&
        at_line_end(text + 1)) {
        link.carrier = text[0] - '0';
    }
    if (std::strcmp(link.state, "unknown") == 0 && link.carrier >= 0) {
        std::strcpy(link.state, link.carrier == 1 ? "up" : "down");
    }
}

namespace {

// Appends to a bounded buffer; once anything does not fit, every later
// append is refused and the result reports the overflow.
class JsonWriter {
  public:
    JsonWriter(char* out, std::size_t capacity) : out_(out), capacity_(capacity) {}

    void text(const char* value) {
        const std::size_t length = std::strlen(value);
        if (!fits_ || length >= capacity_ - length_) {
            fits_ = false;
            return;
        }
        std::memcpy(out_ + length_, value, length);
        length_ += length;
        out_[length_] = '\0';
    }

    void unsigned_number(std::uint64_t value) {
        char digits[24];
        std::size_t count = sizeof digits - 1;
        digits[count] = '\0';
        do {
            digits[--count] = static_cast<char>('0' + value % 10);
            value /= 10;
        } while (value > 0);
        text(digits + count);
    }

    // value / 10^decimals with exactly `decimals` fraction digits.
    void fixed(std::uint64_t value, std::uint64_t scale, std::size_t decimals) {
        unsigned_number(value / scale);
        char fraction[4] = {'.', '0', '0', '\0'};
        std::uint64_t rest = value % scale;
        for (std::size_t i = decimals; i > 0; --i) {
            fraction[i] = static_cast<char>('0' + rest % 10);
            rest /= 10;
        }
        fraction[decimals + 1] = '\0';
        text(fraction);
    }

    void key(const char* name) {
        text("\"");
        text(name);
        text("\":");
    }

    std::size_t finish() {
        if (!fits_) {
            if (capacity_ > 0) {
                out_[0] = '\0';
            }
            return 0;
        }
        return length_;
    }

  private:
    char* out_;
    std::size_t capacity_;
    std::size_t length_ = 0;
    bool fits_ = true;
};

}  // namespace

std::size_t format_json(const HealthSample& sample, std::uint64_t sample_number, char* out,
                        std::size_t capacity) {
    JsonWriter json(out, capacity);
    json.text("{\"type\":\"health\",\"n\":");
    json.unsigned_number(sample_number);
    if (sample.has_uptime) {
        json.text(",");
        json.key("uptime_s");
        json.fixed(sample.uptime_centiseconds / 10, 10, 1);
    }
    if (sample.has_load) {
        json.text(",\"load\":[");
        for (std::size_t i = 0; i < 3; ++i) {
            json.text(i == 0 ? "" : ",");
            json.fixed(sample.load_centi[i], 100, 2);
        }
        json.text("]");
    }
    if (sample.has_mem_total) {
        json.text(",");
        json.key("mem_total_kb");
        json.unsigned_number(sample.mem_total_kb);
    }
    if (sample.has_mem_available) {
        json.text(",");
        json.key("mem_available_kb");
        json.unsigned_number(sample.mem_available_kb);
    }
    const char* separator = ",\"temp_c\":{";
    for (std::size_t i = 0; i < sample.zone_count && i < HealthSample::kMaxZones; ++i) {
        const HealthSample::Zone& zone = sample.zones[i];
        if (!is_safe_name(zone.name, HealthSample::kMaxName)) {
            continue;
        }
        json.text(separator);
        separator = ",";
        json.key(zone.name);
        // Rounded half away from zero to tenths of a degree.
        const std::int64_t milli = zone.millicelsius;
        const auto magnitude = static_cast<std::uint64_t>(milli < 0 ? -milli : milli);
        const std::uint64_t tenths = (magnitude + 50) / 100;
        json.text(milli < 0 && tenths > 0 ? "-" : "");
        json.fixed(tenths, 10, 1);
    }
    if (separator[0] == ',' && separator[1] == '\0') {
        json.text("}");
    }
    separator = ",\"links\":{";
    for (std::size_t i = 0; i < sample.link_count && i < HealthSample::kMaxLinks; ++i) {
        const HealthSample::Link& link = sample.links[i];
        if (!is_safe_name(link.name, HealthSample::kMaxName) ||
            !is_lowercase_word(link.state, HealthSample::kMaxState)) {
            continue;
        }
        json.text(separator);
        separator = ",";
        json.key(link.name);
        json.text("\"");
        json.text(link.state);
        json.text("\"");
    }
    if (separator[0] == ',' && separator[1] == '\0') {
        json.text("}");
    }
    json.text("}");
    return json.finish();
}

}  // namespace tether::daemon
