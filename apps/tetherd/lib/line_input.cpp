// SPDX-License-Identifier: MIT
#include "line_input.h"

#include <unistd.h>

#include <cerrno>

namespace tether::daemon {

LineInput::Read LineInput::read_chunk(std::size_t* size) {
    for (;;) {
        const ssize_t got = ::read(fd_, chunk_, sizeof chunk_);
        if (got > 0) {
            *size = static_cast<std::size_t>(got);
            return Read::kData;
        }
        if (got == 0) {
            eof_ = true;
            return Read::kEof;
        }
        if (errno != EINTR) {
            return errno == EAGAIN || errno == EWOULDBLOCK ? Read::kWouldBlock : Read::kError;
        }
    }
}

bool LineInput::take(char byte) {
    if (byte == '\n') {
        if (discarding_) {
            discarding_ = false;
            ++overlong_;
            return false;
        }
        if (pending_cr_) {
            pending_cr_ = false;
        } else if (line_size_ > 0 && buffer_[line_size_ - 1] == '\r') {
            --line_size_;
        }
        if (line_size_ == 0) {
            return false;  // blank lines carry no message
        }
        ++lines_;
        return true;
    }
    if (discarding_) {
        return false;
    }
    if (line_size_ == capacity_) {
        if (byte == '\r' && !pending_cr_) {
            pending_cr_ = true;
            return false;
        }
        // Longer than the buffer: everything up to the next '\n' goes.
        pending_cr_ = false;
        discarding_ = true;
        line_size_ = 0;
        return false;
    }
    buffer_[line_size_++] = byte;
    return false;
}

bool LineInput::finish() {
    if (discarding_) {
        discarding_ = false;
        line_size_ = 0;
        ++overlong_;
        return false;
    }
    // A final '\r' is taken for a line ending, as it would be before '\n'.
    if (pending_cr_) {
        pending_cr_ = false;
    } else if (line_size_ > 0 && buffer_[line_size_ - 1] == '\r') {
        --line_size_;
    }
    if (line_size_ == 0) {
        return false;
    }
    ++lines_;
    return true;
}

}  // namespace tether::daemon
