/* The version every Seam binary prints for --version. */
#ifndef SEAM_COMMON_VERSION_H
#define SEAM_COMMON_VERSION_H

#define SEAM_VERSION "0.1.0"

#endif
