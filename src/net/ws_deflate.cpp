// SPDX-License-Identifier: MIT
#include "tether/net/ws_deflate.h"

#include <cstring>

namespace tether::net {

namespace {

struct Text {
    const char* data;
    std::size_t size;
};

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

bool is_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignore_case(Text text, const char* lower_literal) {
    const std::size_t n = std::strlen(lower_literal);
    if (text.size != n) {
        return false;
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (to_lower(text.data[i]) != lower_literal[i]) {
            return false;
        }
    }
    return true;
}

Text trim(Text text) {
    while (text.size > 0 && is_ows(text.data[0])) {
        ++text.data;
        --text.size;
    }
    while (text.size > 0 && is_ows(text.data[text.size - 1])) {
        --text.size;
    }
    return text;
}

bool is_token(Text text) {
    if (text.size == 0) {
        return false;
    }
    for (std::size_t i = 0; i < text.size; ++i) {
        if (!is_tchar(text.data[i])) {
            return false;
        }
    }
    return true;
}

// Splits `text` at the first `separator` outside a quoted string: *head is the
// part before, *rest the part after (size 0 and data nullptr when none).
void split(Text text, char separator, Text* head, Text* rest) {
    bool quoted = false;
    for (std::size_t i = 0; i < text.size; ++i) {
        const char c = text.data[i];
        if (quoted && c == '\\' && i + 1 < text.size) {
            ++i;
        } else if (c == '"') {
            quoted = !quoted;
        } else if (!quoted && c == separator) {
            *head = Text{text.data, i};
            *rest = Text{text.data + i + 1, text.size - i - 1};
            return;
        }
    }
    *head = text;
    *rest = Text{nullptr, 0};
}

// A parameter value (RFC 7692 section 7.1: a token, or a quoted string whose
// content is a token) read as window bits 8..15.
bool parse_window_bits(Text value, std::uint8_t* bits) {
    if (value.size >= 2 && value.data[0] == '"' && value.data[value.size - 1] == '"') {
        value = Text{value.data + 1, value.size - 2};
    }
    if (value.size == 0 || value.size > 2) {
        return false;
    }
    unsigned number = 0;
    for (std::size_t i = 0; i < value.size; ++i) {
        if (value.data[i] < '0' || value.data[i] > '9') {
            return false;
        }
        number = number * 10u + static_cast<unsigned>(value.data[i] - '0');
    }
    if (value.size == 2 && value.data[0] == '0') {
        return false;
    }
    if (number < 8 || number > 15) {
        return false;
    }
    *bits = static_cast<std::uint8_t>(number);
    return true;
}

bool valid_bits(std::uint8_t bits) {
    return bits >= kDeflateMinWindowBits && bits <= kDeflateMaxWindowBits;
}

class Writer {
  public:
    Writer(char* out, std::size_t capacity) : out_(out), capacity_(capacity), length_(0) {}
    void append(const char* text) {
        for (; *text != '\0'; ++text) {
            if (length_ + 1 < capacity_) {
                out_[length_] = *text;
            }
            ++length_;
        }
    }
    void append_bits(std::uint8_t bits) {
        char digits[3] = {0, 0, 0};
        if (bits >= 10) {
            digits[0] = '1';
            digits[1] = static_cast<char>('0' + bits - 10);
        } else {
            digits[0] = static_cast<char>('0' + bits);
        }
        append(digits);
    }
    std::size_t finish() {
        if (out_ == nullptr || length_ + 1 > capacity_) {
            return 0;
        }
        out_[length_] = '\0';
        return length_;
    }

  private:
    char* out_;
    std::size_t capacity_;
    std::size_t length_;
};

}  // namespace

bool valid_deflate_offer(const DeflateOffer& offer) {
    return valid_bits(offer.server_max_window_bits) && valid_bits(offer.client_max_window_bits);
}

std::size_t write_deflate_offer(const DeflateOffer& offer, char* out, std::size_t capacity) {
    if (!valid_deflate_offer(offer) || out == nullptr) {
        return 0;
    }
    Writer writer(out, capacity);
    writer.append("permessage-deflate");
    if (offer.server_no_context_takeover) {
        writer.append("; server_no_context_takeover");
    }
    if (offer.client_no_context_takeover) {
        writer.append("; client_no_context_takeover");
    }
    if (offer.server_max_window_bits < kDeflateMaxWindowBits) {
        writer.append("; server_max_window_bits=");
        writer.append_bits(offer.server_max_window_bits);
    }
    writer.append("; client_max_window_bits");
    if (offer.client_max_window_bits < kDeflateMaxWindowBits) {
        writer.append("=");
        writer.append_bits(offer.client_max_window_bits);
    }
    return writer.finish();
}

bool parse_deflate_answer(const char* value, std::size_t size, const DeflateOffer& offer,
                          DeflateAgreement* agreement) {
    if (agreement == nullptr) {
        return false;
    }
    *agreement = DeflateAgreement{};
    if (value == nullptr || !valid_deflate_offer(offer)) {
        return false;
    }
    Text element{nullptr, 0};
    Text others{nullptr, 0};
    split(Text{value, size}, ',', &element, &others);
    if (others.data != nullptr) {
        return false;  // a second element: an extension we did not offer, or a repeat
    }
    Text name{nullptr, 0};
    Text params{nullptr, 0};
    split(element, ';', &name, &params);
    if (!equals_ignore_case(trim(name), "permessage-deflate")) {
        return false;
    }
    DeflateAgreement result;
    result.active = true;
    result.client_max_window_bits = offer.client_max_window_bits;
    bool seen_server_nct = false;
    bool seen_client_nct = false;
    bool seen_server_bits = false;
    bool seen_client_bits = false;
    while (params.data != nullptr) {
        Text param{nullptr, 0};
        split(params, ';', &param, &params);
        Text key{nullptr, 0};
        Text raw{nullptr, 0};
        split(param, '=', &key, &raw);
        key = trim(key);
        const bool has_value = raw.data != nullptr;
        const Text val = trim(raw);
        if (!is_token(key)) {
            return false;
        }
        if (equals_ignore_case(key, "server_no_context_takeover")) {
            if (seen_server_nct || has_value) {
                return false;
            }
            seen_server_nct = true;
            result.server_no_context_takeover = true;
        } else if (equals_ignore_case(key, "client_no_context_takeover")) {
            if (seen_client_nct || has_value) {
                return false;
            }
            seen_client_nct = true;
            result.client_no_context_takeover = true;
        } else if (equals_ignore_case(key, "server_max_window_bits")) {
            std::uint8_t bits = 0;
            if (seen_server_bits || !has_value || !parse_window_bits(val, &bits) ||
                bits > offer.server_max_window_bits) {
                return false;
            }
            seen_server_bits = true;
            result.server_max_window_bits = bits;
        } else if (equals_ignore_case(key, "client_max_window_bits")) {
            std::uint8_t bits = 0;
            if (seen_client_bits || !has_value || !parse_window_bits(val, &bits) ||
                bits < kDeflateMinWindowBits || bits > offer.client_max_window_bits) {
                return false;
            }
            seen_client_bits = true;
            result.client_max_window_bits = bits;
        } else {
            return false;
        }
    }
    if (offer.server_max_window_bits < kDeflateMaxWindowBits && !seen_server_bits) {
        return false;  // the server ignored the window we asked for
    }
    if (offer.server_no_context_takeover && !seen_server_nct) {
        return false;  // accepting the offer means accepting its no_context_takeover
    }
    if (offer.client_no_context_takeover) {
        result.client_no_context_takeover = true;  // we promised it
    }
    *agreement = result;
    return true;
}

}  // namespace tether::net
