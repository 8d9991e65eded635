// SPDX-License-Identifier: MIT
// apps/common/cli: the argument walk every program shares.
#include <string>
#include <vector>

#include "cli.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

namespace {

// argv from a list of strings (argv[0] is the program).
struct Argv {
    explicit Argv(std::vector<std::string> args) : strings(std::move(args)) {
        strings.insert(strings.begin(), "prog");
        for (std::string& s : strings) {
            pointers.push_back(&s[0]);
        }
    }
    int argc() const { return static_cast<int>(pointers.size()); }
    char** argv() { return pointers.data(); }
    std::vector<std::string> strings;
    std::vector<char*> pointers;
};

}  // namespace

TEST_GROUP(Cli){};

TEST(Cli, ALongOptionTakesItsValueAfterEqualsOrFromTheNextArgument) {
    Argv a({"--count=3", "--count", "4", "--name="});
    tether::cli::ArgReader args(a.argc(), a.argv());
    CHECK_TRUE(args.next());
    CHECK_TRUE(args.is_option());
    CHECK_TRUE(args.is("count"));
    CHECK_TRUE(args.has_inline_value());
    STRCMP_EQUAL("3", args.value());
    CHECK_TRUE(args.next());
    CHECK_FALSE(args.has_inline_value());
    STRCMP_EQUAL("4", args.value());  // consumes "4"
    CHECK_TRUE(args.next());
    STRCMP_EQUAL("name", args.name());
    STRCMP_EQUAL("", args.value());  // "--name=" is an empty value, not a missing one
    CHECK_FALSE(args.next());
}

TEST(Cli, AMissingValueIsNull) {
    Argv a({"--count"});
    tether::cli::ArgReader args(a.argc(), a.argv());
    CHECK_TRUE(args.next());
    CHECK_TRUE(args.value() == nullptr);
    CHECK_FALSE(args.next());
}

TEST(Cli, DashHIsHelpAndOtherShortOptionsHaveNoName) {
    Argv a({"-h", "-x", "-", "url", "--"});
    tether::cli::ArgReader args(a.argc(), a.argv());
    CHECK_TRUE(args.next());
    CHECK_TRUE(args.is("help"));
    CHECK_TRUE(args.next());
    CHECK_TRUE(args.is_option());
    STRCMP_EQUAL("", args.name());
    CHECK_FALSE(args.is("help"));
    CHECK_TRUE(args.next());
    CHECK_FALSE(args.is_option());  // "-" alone is an argument
    CHECK_TRUE(args.next());
    CHECK_FALSE(args.is_option());
    STRCMP_EQUAL("url", args.text());
    CHECK_TRUE(args.next());
    CHECK_TRUE(args.is_option());  // "--" is no option we know: unknown
    STRCMP_EQUAL("", args.name());
}

TEST(Cli, ANameTooLongForTheBufferMatchesNothing) {
    Argv a({"--" + std::string(64, 'a') + "=1"});
    tether::cli::ArgReader args(a.argc(), a.argv());
    CHECK_TRUE(args.next());
    STRCMP_EQUAL("", args.name());
    CHECK_FALSE(args.has_inline_value());
}

TEST(Cli, TheWordingsAreTheSameEverywhere) {
    char text[128];
    tether::cli::unknown_option_message("--colour", text, sizeof text);
    STRCMP_EQUAL("unknown option '--colour' (see --help)", text);
    tether::cli::needs_value_message("ca-file", text, sizeof text);
    STRCMP_EQUAL("option '--ca-file' needs a value (see --help)", text);
    tether::cli::takes_no_value_message("once", text, sizeof text);
    STRCMP_EQUAL("option '--once' takes no value (see --help)", text);
    CHECK_EQUAL(2, tether::cli::kExitUsage);
}
