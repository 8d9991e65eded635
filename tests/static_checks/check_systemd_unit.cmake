# Runs `systemd-analyze verify` over a systemd unit, with ExecStart and
# ExecReload pointed at /bin/true (the daemon is not installed on the build
# machine, and verify insists that the binary exists). Unknown keys and bad
# values are only warnings for verify, so any output at all fails the check.
# Prints "SKIPPED" when systemd-analyze is not on the machine.
#   cmake -DUNIT=path/to/x.service -DWORK_DIR=dir -P check_systemd_unit.cmake
find_program(SYSTEMD_ANALYZE systemd-analyze)
if(NOT SYSTEMD_ANALYZE)
    message("SKIPPED: systemd-analyze not found")
    return()
endif()
file(READ ${UNIT} text)
string(REGEX REPLACE "\nExecStart=[^\n]*" "\nExecStart=/bin/true" text "${text}")
string(REGEX REPLACE "\nExecReload=[^\n]*" "\nExecReload=/bin/true" text "${text}")
get_filename_component(name ${UNIT} NAME)
file(MAKE_DIRECTORY ${WORK_DIR})
file(WRITE ${WORK_DIR}/${name} "${text}")
execute_process(COMMAND ${SYSTEMD_ANALYZE} verify ${WORK_DIR}/${name}
    RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT result EQUAL 0 OR NOT "${out}${err}" STREQUAL "")
    message(FATAL_ERROR "systemd-analyze verify ${name} (exit ${result}):\n${out}${err}")
endif()
message("verified ${name}")
