# SPDX-License-Identifier: MIT
# Runs `systemd-analyze verify` over each shipped systemd unit, with ExecStart
# and ExecReload pointed at /bin/true (the daemons are not installed on the
# build machine, and verify insists that the binary exists). Unknown keys and
# bad values are only warnings for verify, so any output at all fails the
# check. Prints "SKIPPED" when systemd-analyze is not on the machine.
#   cmake "-DUNITS=a.service|b.service" -DWORK_DIR=dir -P check_systemd_unit.cmake
# (UNITS is separated by '|': a ';' would split the ctest command line.)
find_program(SYSTEMD_ANALYZE systemd-analyze)
if(NOT SYSTEMD_ANALYZE)
    message("SKIPPED: systemd-analyze not found")
    return()
endif()
string(REPLACE "|" ";" units "${UNITS}")
file(MAKE_DIRECTORY ${WORK_DIR})
foreach(unit IN LISTS units)
    file(READ ${unit} text)
    string(REGEX REPLACE "\nExecStart=[^\n]*" "\nExecStart=/bin/true" text "${text}")
    string(REGEX REPLACE "\nExecReload=[^\n]*" "\nExecReload=/bin/true" text "${text}")
    get_filename_component(name ${unit} NAME)
    file(WRITE ${WORK_DIR}/${name} "${text}")
    execute_process(COMMAND ${SYSTEMD_ANALYZE} verify ${WORK_DIR}/${name}
        RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT result EQUAL 0 OR NOT "${out}${err}" STREQUAL "")
        message(FATAL_ERROR "systemd-analyze verify ${name} (exit ${result}):\n${out}${err}")
    endif()
    message("verified ${name}")
endforeach()
