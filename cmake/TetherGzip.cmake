# SPDX-License-Identifier: MIT
# gzip -9n IN > OUT, for a reproducible compressed file (no name, no time stamp).
#   cmake -DGZIP=gzip -DIN=file -DOUT=file.gz -P TetherGzip.cmake
execute_process(COMMAND ${GZIP} -9n -c ${IN} OUTPUT_FILE ${OUT} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
    file(REMOVE ${OUT})
    message(FATAL_ERROR "gzip -9n ${IN} failed (${result})")
endif()
