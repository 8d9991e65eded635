// SPDX-License-Identifier: MIT
#include <cstdlib>

// CppUTest
#include <CppUTest/CommandLineTestRunner.h>
#include <CppUTest/MemoryLeakWarningPlugin.h>

int main(int argc, char** argv) {
    // Under valgrind (make test-valgrind sets TETHER_UNIT_UNDER_VALGRIND), CppUTest's
    // replacement operator new and delete are switched off: valgrind tracks the
    // heap itself, and CppUTest's guarded blocks read as invalid accesses to it.
    if (std::getenv("TETHER_UNIT_UNDER_VALGRIND") != nullptr) {
        MemoryLeakWarningPlugin::turnOffNewDeleteOverloads();
    }
    return CommandLineTestRunner::RunAllTests(argc, argv);
}
