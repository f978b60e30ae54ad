// TimeZone: the UTC offsets of an IANA time zone ("Europe/Berlin"), read from
// the system's zoneinfo (TZif files, version 2+: the 64-bit transition table,
// then the POSIX TZ rule in the footer for times after the last transition,
// e.g. "CET-1CEST,M3.5.0,M10.5.0/3"). Cron schedules with a timezone match
// their fields against local wall-clock time.
//
// Thread-safety: an immutable value after Load; safe to share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace gust::schedule {

class TimeZone {
 public:
  // InvalidArgument naming the zone when it is unknown or unreadable.
  static Result<TimeZone> Load(const std::string& name,
                               const std::string& zoneinfo_dir = "/usr/share/zoneinfo");
  // Parses a TZif file's contents (tests).
  static Result<TimeZone> Parse(const std::string& name, const std::string& tzif);

  // Seconds east of UTC in force at utc_s.
  int OffsetAt(int64_t utc_s) const;
  const std::string& name() const { return name_; }

 private:
  struct Rule {  // a POSIX TZ "Mm.w.d/time" transition rule
    int month = 0, week = 0, weekday = 0;
    int64_t time_s = 7200;
  };
  // Seconds east of UTC from the footer rule (times after the table).
  int RuleOffsetAt(int64_t utc_s) const;
  static int64_t RuleUtc(const Rule& rule, int year, int offset_before);
  bool ParseFooter(const std::string& footer);

  std::string name_;
  std::vector<int64_t> transitions_;  // UTC seconds, ascending
  std::vector<int> offsets_;          // offset after transitions_[i]
  int initial_offset_ = 0;
  bool has_rule_ = false;
  int std_offset_ = 0, dst_offset_ = 0;
  bool has_dst_ = false;
  Rule dst_start_, dst_end_;
};

}  // namespace gust::schedule
