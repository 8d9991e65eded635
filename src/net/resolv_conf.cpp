// SPDX-License-Identifier: MIT
#include "tether/net/resolv_conf.h"

#include <cstring>

namespace tether::net {

namespace {

struct Word {
    const char* text;
    std::size_t size;

    bool is(const char* literal) const {
        return std::strlen(literal) == size && std::memcmp(text, literal, size) == 0;
    }
    bool starts_with(const char* prefix) const {
        const std::size_t prefix_size = std::strlen(prefix);
        return prefix_size <= size && std::memcmp(text, prefix, prefix_size) == 0;
    }
};

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Splits one line (comment already cut off) into blank-separated words.
class WordReader {
  public:
    WordReader(const char* line, std::size_t size) : line_(line), size_(size) {}

    bool next(Word* word) {
        while (pos_ < size_ && is_blank(line_[pos_])) {
            ++pos_;
        }
        if (pos_ == size_) {
            return false;
        }
        const std::size_t start = pos_;
        while (pos_ < size_ && !is_blank(line_[pos_])) {
            ++pos_;
        }
        *word = Word{line_ + start, pos_ - start};
        return true;
    }

  private:
    const char* line_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// A decimal number made of digits only; saturates so huge values still clamp.
bool parse_number(const char* text, std::size_t size, std::uint32_t* value) {
    if (size == 0) {
        return false;
    }
    std::uint32_t result = 0;
    for (std::size_t i = 0; i < size; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return false;
        }
        result =
            result > 100000u ? result : result * 10u + static_cast<std::uint32_t>(text[i] - '0');
    }
    *value = result;
    return true;
}

void add_nameserver(const Word& word, ResolvConf* conf) {
    IpAddress address;
    if (conf->nameserver_count < ResolvConf::kMaxNameservers &&
        parse_ip_address(word.text, word.size, &address)) {
        conf->nameservers[conf->nameserver_count++] = address;
    }
}

void add_search_domain(const Word& word, ResolvConf* conf) {
    if (conf->search_count == ResolvConf::kMaxSearchDomains ||
        !dns_name_is_valid(word.text, word.size)) {
        return;
    }
    const std::size_t size = word.text[word.size - 1] == '.' ? word.size - 1 : word.size;
    char* domain = conf->search[conf->search_count++];
    std::memcpy(domain, word.text, size);
    domain[size] = '\0';
}

void apply_option(const Word& word, ResolvConf* conf) {
    struct NumericOption {
        const char* prefix;
        std::uint32_t ResolvConf::*field;
        std::uint32_t min;
        std::uint32_t max;
    };
    static const NumericOption kOptions[] = {
        {"timeout:", &ResolvConf::timeout_s, 1, ResolvConf::kMaxTimeoutS},
        {"attempts:", &ResolvConf::attempts, 1, ResolvConf::kMaxAttempts},
        {"ndots:", &ResolvConf::ndots, 0, ResolvConf::kMaxNdots},
    };
    if (word.is("rotate")) {
        conf->rotate = true;
        return;
    }
    for (const NumericOption& option : kOptions) {
        if (!word.starts_with(option.prefix)) {
            continue;
        }
        const std::size_t prefix_size = std::strlen(option.prefix);
        std::uint32_t value = 0;
        if (parse_number(word.text + prefix_size, word.size - prefix_size, &value)) {
            value = value < option.min ? option.min : value;
            conf->*option.field = value > option.max ? option.max : value;
        }
        return;
    }
}

void apply_line(const char* line, std::size_t size, ResolvConf* conf) {
    WordReader words(line, size);
    Word keyword{};
    if (!words.next(&keyword)) {
        return;
    }
    Word word{};
    if (keyword.is("nameserver")) {
        if (words.next(&word)) {
            add_nameserver(word, conf);
        }
    } else if (keyword.is("search") || keyword.is("domain")) {
        conf->search_count = 0;
        const bool single = keyword.is("domain");
        while (words.next(&word)) {
            add_search_domain(word, conf);
            if (single) {
                break;
            }
        }
    } else if (keyword.is("options")) {
        while (words.next(&word)) {
            apply_option(word, conf);
        }
    }
}

}  // namespace

void parse_resolv_conf(const char* text, std::size_t len, ResolvConf* conf) {
    ResolvConf parsed;
    parsed.nameserver_count = 0;
    std::size_t pos = 0;
    while (pos < len) {
        std::size_t end = pos;
        while (end < len && text[end] != '\n') {
            ++end;
        }
        std::size_t content_end = pos;
        while (content_end < end && text[content_end] != '#' && text[content_end] != ';') {
            ++content_end;
        }
        apply_line(text + pos, content_end - pos, &parsed);
        pos = end + 1;
    }
    if (parsed.nameserver_count == 0) {
        parsed.nameservers[0] = make_ipv4(127, 0, 0, 1);
        parsed.nameserver_count = 1;
    }
    *conf = parsed;
}

}  // namespace tether::net
