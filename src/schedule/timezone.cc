#include "schedule/timezone.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "schedule/expression.h"

namespace gust::schedule {

namespace {

int64_t ReadBig(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  if (bytes == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<int64_t>(v);
}

// [+-]hh[:mm[:ss]] -> seconds; advances pos. false on a malformed value.
bool ParseHms(const std::string& s, size_t& pos, int64_t* out) {
  int sign = 1;
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) sign = s[pos++] == '-' ? -1 : 1;
  int64_t parts[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    if (i > 0) {
      if (pos >= s.size() || s[pos] != ':') break;
      ++pos;
    }
    size_t start = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      parts[i] = parts[i] * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) return false;
  }
  *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
  return true;
}

bool SkipName(const std::string& s, size_t& pos) {
  if (pos < s.size() && s[pos] == '<') {
    size_t end = s.find('>', pos);
    if (end == std::string::npos) return false;
    pos = end + 1;
    return true;
  }
  size_t start = pos;
  while (pos < s.size() && std::isalpha(static_cast<unsigned char>(s[pos]))) ++pos;
  return pos - start >= 3;
}

}  // namespace

Result<TimeZone> TimeZone::Load(const std::string& name, const std::string& zoneinfo_dir) {
  bool ok = !name.empty() && name.size() < 128 && name.front() != '/' &&
            name.find("..") == std::string::npos;
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' ||
                c == '+');
  }
  if (!ok) return Status::InvalidArgument("unknown time zone '" + name + "'");
  std::ifstream in(zoneinfo_dir + "/" + name, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument("unknown time zone '" + name +
                                   "' (an IANA name such as Europe/Berlin or America/New_York)");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return Parse(name, ss.str());
}

Result<TimeZone> TimeZone::Parse(const std::string& name, const std::string& data) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("time zone '" + name + "': unreadable zoneinfo (" + why + ")");
  };
  if (data.size() < 44 || data.compare(0, 4, "TZif") != 0) return bad("not a TZif file");
  auto counts = [&](size_t at, int64_t c[6]) {
    for (int i = 0; i < 6; ++i) c[i] = ReadBig(data, at + 20 + 4 * i, 4);
  };
  int64_t c[6];  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  counts(0, c);
  size_t v1_size = c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
  bool v2 = data[4] >= '2';
  size_t at = 44;
  int time_bytes = 4;
  if (v2) {
    at = 44 + v1_size;
    if (data.size() < at + 44 || data.compare(at, 4, "TZif") != 0) return bad("no v2 header");
    counts(at, c);
    at += 44;
    time_bytes = 8;
  }
  size_t need = c[3] * time_bytes + c[3] + c[4] * 6 + c[5] + c[2] * (time_bytes + 4) + c[1] + c[0];
  if (data.size() < at + need) return bad("truncated");
  TimeZone tz;
  tz.name_ = name;
  std::vector<int> type_offsets(static_cast<size_t>(c[4]));
  size_t types_at = at + c[3] * time_bytes + c[3];
  for (int64_t i = 0; i < c[4]; ++i) {
    type_offsets[i] = static_cast<int>(ReadBig(data, types_at + 6 * i, 4));
  }
  if (type_offsets.empty()) return bad("no local time types");
  tz.initial_offset_ = type_offsets[0];
  for (int64_t i = 0; i < c[3]; ++i) {
    tz.transitions_.push_back(ReadBig(data, at + i * time_bytes, time_bytes));
    size_t type = static_cast<unsigned char>(data[at + c[3] * time_bytes + i]);
    if (type >= type_offsets.size()) return bad("bad type index");
    tz.offsets_.push_back(type_offsets[type]);
  }
  if (v2) {
    size_t footer_at = at + need;
    if (footer_at < data.size() && data[footer_at] == '\n') {
      size_t end = data.find('\n', footer_at + 1);
      if (end != std::string::npos) tz.ParseFooter(data.substr(footer_at + 1, end - footer_at - 1));
    }
  }
  return tz;
}

bool TimeZone::ParseFooter(const std::string& s) {
  size_t pos = 0;
  int64_t std_west = 0;
  if (!SkipName(s, pos) || !ParseHms(s, pos, &std_west)) return false;
  std_offset_ = static_cast<int>(-std_west);  // POSIX offsets are west of UTC
  if (pos == s.size()) {
    has_rule_ = true;
    return true;
  }
  if (!SkipName(s, pos)) return false;
  dst_offset_ = std_offset_ + 3600;
  if (pos < s.size() && s[pos] != ',') {
    int64_t dst_west = 0;
    if (!ParseHms(s, pos, &dst_west)) return false;
    dst_offset_ = static_cast<int>(-dst_west);
  }
  for (Rule* rule : {&dst_start_, &dst_end_}) {
    if (pos >= s.size() || s[pos] != ',') return false;
    ++pos;
    if (pos >= s.size() || s[pos] != 'M') return false;  // Jn / n rules: not used by zoneinfo
    ++pos;
    int fields[3] = {0, 0, 0};
    for (int i = 0; i < 3; ++i) {
      if (i > 0) {
        if (pos >= s.size() || s[pos] != '.') return false;
        ++pos;
      }
      size_t start = pos;
      while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
        fields[i] = fields[i] * 10 + (s[pos] - '0');
        ++pos;
      }
      if (pos == start) return false;
    }
    rule->month = fields[0];
    rule->week = fields[1];
    rule->weekday = fields[2];
    rule->time_s = 7200;
    if (pos < s.size() && s[pos] == '/') {
      ++pos;
      if (!ParseHms(s, pos, &rule->time_s)) return false;
    }
  }
  has_rule_ = has_dst_ = true;
  return true;
}

// UTC seconds of the rule's local transition time in year, given the offset
// in force just before it.
int64_t TimeZone::RuleUtc(const Rule& rule, int year, int offset_before) {
  int first_dow = DayOfWeek(year, rule.month, 1) - 1;  // 0 = Sunday
  int day = 1 + (rule.weekday - first_dow + 7) % 7 + (rule.week - 1) * 7;
  int dim = DaysInMonth(year, rule.month);
  while (day > dim) day -= 7;  // week 5: the last such day
  return DaysFromCivil(year, rule.month, day) * 86400 + rule.time_s - offset_before;
}

int TimeZone::RuleOffsetAt(int64_t utc_s) const {
  if (!has_dst_) return std_offset_;
  int64_t days = utc_s >= 0 ? utc_s / 86400 : -((-utc_s + 86399) / 86400);
  // The year of utc_s (close enough near new year: rules never switch there).
  int year = 1970 + static_cast<int>(days / 365);
  while (DaysFromCivil(year, 1, 1) > days) --year;
  while (DaysFromCivil(year + 1, 1, 1) <= days) ++year;
  int64_t start = RuleUtc(dst_start_, year, std_offset_);
  int64_t end = RuleUtc(dst_end_, year, dst_offset_);
  bool dst = start < end ? (utc_s >= start && utc_s < end) : (utc_s >= start || utc_s < end);
  return dst ? dst_offset_ : std_offset_;
}

int TimeZone::OffsetAt(int64_t utc_s) const {
  if (transitions_.empty() || utc_s < transitions_.front()) {
    return transitions_.empty() && has_rule_ ? RuleOffsetAt(utc_s) : initial_offset_;
  }
  if (utc_s >= transitions_.back() && has_rule_) return RuleOffsetAt(utc_s);
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc_s);
  return offsets_[static_cast<size_t>(it - transitions_.begin()) - 1];
}

}  // namespace gust::schedule
