#include "schedule/expression.h"

#include "schedule/timezone.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

namespace gust::schedule {

int64_t DaysFromCivil(int year, int month, int day) {
  // Howard Hinnant's days_from_civil.
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(year - era * 400);
  const unsigned doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

namespace {

struct Civil {
  int year, month, day, hour, minute;
};

Civil CivilFromMinutes(int64_t minutes) {
  int64_t days = minutes >= 0 ? minutes / 1440 : -((-minutes + 1439) / 1440);
  int64_t rem = minutes - days * 1440;
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int year = static_cast<int>(yoe + era * 400 + (month <= 2));
  return {year, month, day, static_cast<int>(rem / 60), static_cast<int>(rem % 60)};
}

int64_t MinutesOf(int year, int month, int day, int hour, int minute) {
  return DaysFromCivil(year, month, day) * 1440 + hour * 60 + minute;
}

bool IsWeekday(int year, int month, int day) {
  int dow = DayOfWeek(year, month, day);
  return dow >= 2 && dow <= 6;
}

constexpr int kMinYear = 1970;
constexpr int kMaxYear = 2199;

constexpr std::array<const char*, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 7> kDayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

// One cron field being parsed: its text, where it starts in the whole
// expression (for error positions), its range and its names.
struct FieldSpec {
  const char* label;  // "minute", "day-of-week", ...
  int lo, hi;
  const char* const* names = nullptr;  // names[0] is the value lo
  size_t name_count = 0;
  bool wraps = false;  // ranges like FRI-MON
};

class CronParser {
 public:
  CronParser(std::string_view whole, size_t offset) : whole_(whole), offset_(offset) {}

  Status Error(size_t at, const std::string& reason) const {
    return Status::InvalidArgument("invalid schedule expression \"" + std::string(whole_) +
                                   "\": position " + std::to_string(offset_ + at + 1) + ": " +
                                   reason);
  }

  // A number or a name at field[pos...] (the field starts at field_at in the
  // cron body); advances pos.
  Result<int> ValueAt(std::string_view field, size_t field_at, size_t& pos,
                      const FieldSpec& spec) const {
    size_t start = pos;
    if (pos < field.size() && std::isdigit(static_cast<unsigned char>(field[pos]))) {
      int64_t v = 0;
      while (pos < field.size() && std::isdigit(static_cast<unsigned char>(field[pos]))) {
        v = std::min<int64_t>(v * 10 + (field[pos] - '0'), 1'000'000);
        ++pos;
      }
      if (v < spec.lo || v > spec.hi) {
        return Error(field_at + start, std::string(spec.label) + " " + std::to_string(v) +
                                           " is out of range " + std::to_string(spec.lo) + "-" +
                                           std::to_string(spec.hi));
      }
      return static_cast<int>(v);
    }
    if (spec.names != nullptr && pos + 3 <= field.size()) {
      std::string word(field.substr(pos, 3));
      for (char& c : word) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      for (size_t i = 0; i < spec.name_count; ++i) {
        if (word == spec.names[i]) {
          pos += 3;
          return spec.lo + static_cast<int>(i);
        }
      }
    }
    std::string got = pos < field.size() ? "'" + std::string(1, field[pos]) + "'" : "the end";
    return Error(field_at + start, "expected a " + std::string(spec.label) + " value (" +
                                       std::to_string(spec.lo) + "-" + std::to_string(spec.hi) +
                                       (spec.names ? " or a name" : "") + "), found " + got);
  }

  // Parses a plain field ("*", lists, ranges, steps) into bits; position of
  // the field inside the expression is field_at.
  template <size_t N>
  Status Plain(std::string_view field, size_t field_at, const FieldSpec& spec, std::bitset<N>& bits,
               int bit_base = 0) {
    size_t pos = 0;
    while (true) {
      GUST_RETURN_IF_ERROR(
          Item(field, field_at, pos, spec, [&](int v) { bits.set(v - bit_base); }));
      if (pos == field.size()) return Status::Ok();
      if (field[pos] != ',') {
        return Error(field_at + pos, "unexpected '" + std::string(1, field[pos]) + "' in the " +
                                         spec.label + " field");
      }
      ++pos;
    }
  }

  // One list item: "*", "a", "a-b", any of those with "/step".
  template <typename Set>
  Status Item(std::string_view field, size_t field_at, size_t& pos, const FieldSpec& spec,
              Set set) {
    size_t item_at = pos;
    int first = spec.lo, last = spec.hi;
    bool star = false;
    if (pos < field.size() && field[pos] == '*') {
      star = true;
      ++pos;
    } else {
      auto a = ValueAt(field, field_at, pos, spec);
      if (!a.ok()) return a.status();
      first = last = *a;
      if (pos < field.size() && field[pos] == '-') {
        ++pos;
        auto b = ValueAt(field, field_at, pos, spec);
        if (!b.ok()) return b.status();
        last = *b;
        if (last < first && !spec.wraps) {
          return Error(field_at + item_at, std::string("range ") + std::to_string(first) + "-" +
                                               std::to_string(last) + " in the " + spec.label +
                                               " field runs backwards");
        }
      }
    }
    int step = 1;
    if (pos < field.size() && field[pos] == '/') {
      size_t step_at = ++pos;
      int64_t v = 0;
      if (pos >= field.size() || !std::isdigit(static_cast<unsigned char>(field[pos]))) {
        return Error(field_at + step_at, "expected a step (a number) after '/'");
      }
      while (pos < field.size() && std::isdigit(static_cast<unsigned char>(field[pos]))) {
        v = std::min<int64_t>(v * 10 + (field[pos] - '0'), 1'000'000);
        ++pos;
      }
      if (v < 1 || v > spec.hi - spec.lo + 1) {
        return Error(field_at + step_at, "step " + std::to_string(v) + " in the " + spec.label +
                                             " field must be 1-" +
                                             std::to_string(spec.hi - spec.lo + 1));
      }
      step = static_cast<int>(v);
      // "a/step" means from a to the end of the range.
      if (!star && first == last) last = spec.hi;
    }
    int span = spec.hi - spec.lo + 1;
    int count = last >= first ? last - first + 1 : last + span - first + 1;
    for (int i = 0; i < count; i += step) {
      int v = first + i;
      if (v > spec.hi) v -= span;
      set(v);
    }
    return Status::Ok();
  }

 private:
  std::string_view whole_;
  size_t offset_;
};

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

}  // namespace

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

int DayOfWeek(int year, int month, int day) {
  int64_t days = DaysFromCivil(year, month, day);  // 1970-01-01 was a Thursday (5)
  int64_t w = (days + 4) % 7;                      // 0 = Sunday
  if (w < 0) w += 7;
  return static_cast<int>(w) + 1;
}

std::string FormatEventTime(int64_t epoch_ms) {
  int64_t seconds = epoch_ms >= 0 ? epoch_ms / 1000 : -((-epoch_ms + 999) / 1000);
  int64_t minutes = seconds >= 0 ? seconds / 60 : -((-seconds + 59) / 60);
  Civil c = CivilFromMinutes(minutes);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year, c.month, c.day, c.hour,
                c.minute, static_cast<int>(seconds - minutes * 60));
  return buf;
}

Result<ScheduleExpression> ScheduleExpression::Parse(std::string_view text) {
  ScheduleExpression e;
  e.text_ = std::string(text);
  auto fail = [&](size_t at, const std::string& reason) {
    return Status::InvalidArgument("invalid schedule expression \"" + std::string(text) +
                                   "\": position " + std::to_string(at + 1) + ": " + reason);
  };
  if (text.empty()) return fail(0, "empty; expected rate(...) or cron(...)");
  bool is_rate = text.starts_with("rate(");
  bool is_cron = text.starts_with("cron(");
  if (!is_rate && !is_cron) return fail(0, "expected rate(...) or cron(...)");
  if (text.back() != ')') return fail(text.size() - 1, "expected ')' at the end");
  const size_t body_at = 5;
  std::string_view body = text.substr(body_at, text.size() - body_at - 1);

  if (is_rate) {
    size_t pos = 0;
    if (pos >= body.size() || !std::isdigit(static_cast<unsigned char>(body[pos]))) {
      return fail(body_at + pos, "expected a positive whole number, as in rate(5 minutes)");
    }
    int64_t n = 0;
    while (pos < body.size() && std::isdigit(static_cast<unsigned char>(body[pos]))) {
      n = std::min<int64_t>(n * 10 + (body[pos] - '0'), int64_t{1} << 40);
      ++pos;
    }
    if (n < 1) return fail(body_at, "the value must be at least 1");
    if (pos >= body.size() || body[pos] != ' ') {
      return fail(body_at + pos, "expected a space and a unit (minutes, hours, days or seconds)");
    }
    size_t unit_at = ++pos;
    std::string_view unit = body.substr(pos);
    struct Unit {
      const char* singular;
      const char* plural;
      int64_t ms;
    };
    static constexpr Unit kUnits[] = {{"second", "seconds", 1000},
                                      {"minute", "minutes", 60'000},
                                      {"hour", "hours", 3'600'000},
                                      {"day", "days", 86'400'000}};
    for (const Unit& u : kUnits) {
      if (unit != u.singular && unit != u.plural) continue;
      if (n == 1 && unit == u.plural) {
        return fail(body_at + unit_at, "a value of 1 takes the singular unit: rate(1 " +
                                           std::string(u.singular) + ")");
      }
      if (n > 1 && unit == u.singular) {
        return fail(body_at + unit_at, "a value above 1 takes the plural unit: rate(" +
                                           std::to_string(n) + " " + u.plural + ")");
      }
      if (n > (int64_t{100} * 365 * 86'400'000) / u.ms) {
        return fail(body_at, "the period is over 100 years");
      }
      e.period_ms_ = n * u.ms;
      return e;
    }
    return fail(body_at + unit_at, "unknown unit '" + std::string(unit) +
                                       "'; use minute(s), hour(s), day(s) or second(s)");
  }

  // cron: six fields separated by spaces.
  std::vector<std::pair<std::string_view, size_t>> fields;  // text, offset in body
  size_t pos = 0;
  while (pos < body.size()) {
    if (body[pos] == ' ') {
      ++pos;
      continue;
    }
    size_t start = pos;
    while (pos < body.size() && body[pos] != ' ') ++pos;
    fields.emplace_back(body.substr(start, pos - start), start);
  }
  if (fields.size() != 6) {
    return fail(body_at,
                "cron takes 6 fields (minutes hours day-of-month month day-of-week year), "
                "found " +
                    std::to_string(fields.size()));
  }
  CronParser p(text, body_at);
  static const FieldSpec kMinute{"minute", 0, 59};
  static const FieldSpec kHour{"hour", 0, 23};
  static const FieldSpec kDom{"day-of-month", 1, 31};
  static const FieldSpec kMonth{"month", 1, 12, kMonthNames.data(), kMonthNames.size(), true};
  static const FieldSpec kDow{"day-of-week", 1, 7, kDayNames.data(), kDayNames.size(), true};
  static const FieldSpec kYear{"year", kMinYear, kMaxYear};
  GUST_RETURN_IF_ERROR(p.Plain(fields[0].first, fields[0].second, kMinute, e.minutes_));
  GUST_RETURN_IF_ERROR(p.Plain(fields[1].first, fields[1].second, kHour, e.hours_));
  GUST_RETURN_IF_ERROR(p.Plain(fields[3].first, fields[3].second, kMonth, e.months_));
  GUST_RETURN_IF_ERROR(p.Plain(fields[5].first, fields[5].second, kYear, e.years_, kMinYear));

  // Day-of-month: '?', or a list of plain items, L, L-n, LW, nW.
  auto [dom, dom_at] = fields[2];
  auto [dow, dow_at] = fields[4];
  e.dom_unspecified_ = dom == "?";
  e.dow_unspecified_ = dow == "?";
  if (e.dom_unspecified_ == e.dow_unspecified_) {
    return fail(body_at + (e.dom_unspecified_ ? dom_at : dow_at),
                e.dom_unspecified_
                    ? "day-of-month and day-of-week cannot both be '?': give one of them"
                    : "one of day-of-month and day-of-week must be '?' (EventBridge does not "
                      "combine them)");
  }
  if (!e.dom_unspecified_) {
    size_t at = 0;
    while (at <= dom.size()) {
      size_t end = dom.find(',', at);
      if (end == std::string_view::npos) end = dom.size();
      std::string_view item = dom.substr(at, end - at);
      std::string up = Upper(item);
      size_t item_pos = dom_at + at;
      if (item.empty()) return fail(body_at + item_pos, "empty item in the day-of-month field");
      if (up == "L") {
        e.dom_last_offsets_.push_back(0);
      } else if (up == "LW") {
        e.dom_last_weekday_ = true;
      } else if (up.starts_with("L-")) {
        std::string_view n = item.substr(2);
        if (!AllDigits(n) || n.size() > 2 || std::stoi(std::string(n)) > 30) {
          return fail(body_at + item_pos + 2, "L-n takes n from 0 to 30 days before the last day");
        }
        e.dom_last_offsets_.push_back(std::stoi(std::string(n)));
      } else if (up.size() >= 2 && up.back() == 'W') {
        std::string_view n = item.substr(0, item.size() - 1);
        if (!AllDigits(n) || n.size() > 2 || std::stoi(std::string(n)) < 1 ||
            std::stoi(std::string(n)) > 31) {
          return fail(body_at + item_pos,
                      "W takes one day of the month (1-31) before it, as in 15W");
        }
        e.dom_nearest_weekday_.push_back(std::stoi(std::string(n)));
      } else if (item.find_first_of("?#") != std::string_view::npos) {
        size_t bad = item.find_first_of("?#");
        return fail(body_at + item_pos + bad, std::string("'") + item[bad] +
                                                  "' cannot be combined with other day-of-month "
                                                  "values");
      } else {
        size_t ipos = 0;
        GUST_RETURN_IF_ERROR(
            p.Item(item, item_pos, ipos, kDom, [&](int v) { e.dom_days_.set(v); }));
        if (ipos != item.size()) {
          return fail(body_at + item_pos + ipos,
                      "unexpected '" + std::string(1, item[ipos]) + "' in the day-of-month field");
        }
      }
      at = end + 1;
    }
  }
  if (!e.dow_unspecified_) {
    size_t at = 0;
    while (at <= dow.size()) {
      size_t end = dow.find(',', at);
      if (end == std::string_view::npos) end = dow.size();
      std::string_view item = dow.substr(at, end - at);
      std::string up = Upper(item);
      size_t item_pos = dow_at + at;
      if (item.empty()) return fail(body_at + item_pos, "empty item in the day-of-week field");
      if (up == "L") {
        e.dow_days_.set(7);  // alone, L is the last day of the week: Saturday
      } else if (up.size() >= 2 && up.back() == 'L') {
        size_t vpos = 0;
        std::string_view day = item.substr(0, item.size() - 1);
        auto v = p.ValueAt(day, item_pos, vpos, kDow);
        if (!v.ok()) return v.status();
        if (vpos != day.size())
          return fail(body_at + item_pos, "nL takes one day of the week, as in 6L");
        e.dow_last_.push_back(*v);
      } else if (auto hash = item.find('#'); hash != std::string_view::npos) {
        size_t vpos = 0;
        std::string_view day = item.substr(0, hash);
        auto v = p.ValueAt(day, item_pos, vpos, kDow);
        if (!v.ok()) return v.status();
        if (vpos != day.size())
          return fail(body_at + item_pos, "n#k takes one day of the week before '#'");
        std::string_view k = item.substr(hash + 1);
        if (!AllDigits(k) || k.size() > 1 || k[0] < '1' || k[0] > '5') {
          return fail(body_at + item_pos + hash + 1,
                      "the week after '#' must be 1-5 (the k-th such day of the month)");
        }
        e.dow_nth_.emplace_back(*v, k[0] - '0');
      } else if (item.find_first_of("?W") != std::string_view::npos) {
        size_t bad = item.find_first_of("?W");
        return fail(body_at + item_pos + bad, std::string("'") + item[bad] +
                                                  "' is not allowed here in the day-of-week field");
      } else {
        size_t ipos = 0;
        GUST_RETURN_IF_ERROR(
            p.Item(item, item_pos, ipos, kDow, [&](int v) { e.dow_days_.set(v); }));
        if (ipos != item.size()) {
          return fail(body_at + item_pos + ipos,
                      "unexpected '" + std::string(1, item[ipos]) + "' in the day-of-week field");
        }
      }
      at = end + 1;
    }
  }
  return e;
}

bool ScheduleExpression::DayMatches(int year, int month, int day) const {
  int dim = DaysInMonth(year, month);
  if (!dom_unspecified_) {
    if (dom_days_.test(day)) return true;
    for (int off : dom_last_offsets_)
      if (day == dim - off) return true;
    if (dom_last_weekday_) {
      int d = dim;
      while (!IsWeekday(year, month, d)) --d;
      if (day == d) return true;
    }
    for (int n : dom_nearest_weekday_) {
      if (n > dim) continue;
      int d = n;
      int dow = DayOfWeek(year, month, n);
      if (dow == 7) d = n == 1 ? 3 : n - 1;        // Saturday: Friday, or Monday the 3rd
      if (dow == 1) d = n == dim ? n - 2 : n + 1;  // Sunday: Monday, or Friday before the end
      if (day == d) return true;
    }
    return false;
  }
  int dow = DayOfWeek(year, month, day);
  if (dow_days_.test(dow)) return true;
  for (int n : dow_last_)
    if (dow == n && day + 7 > dim) return true;
  for (auto [n, k] : dow_nth_)
    if (dow == n && (day - 1) / 7 + 1 == k) return true;
  return false;
}

std::optional<int64_t> ScheduleExpression::NextAfter(int64_t after_ms, int64_t anchor_ms,
                                                     const TimeZone* tz) const {
  if (is_rate()) {
    if (after_ms < anchor_ms) return anchor_ms;
    int64_t k = (after_ms - anchor_ms) / period_ms_ + 1;
    return anchor_ms + k * period_ms_;
  }
  if (tz == nullptr) return NextWallClock(after_ms);
  auto seconds = [](int64_t ms) { return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000); };
  int64_t cursor = after_ms + int64_t{tz->OffsetAt(seconds(after_ms))} * 1000;
  for (int i = 0; i < 100'000; ++i) {
    auto local = NextWallClock(cursor);
    if (!local) return std::nullopt;
    int64_t l = seconds(*local);
    // The UTC instants whose local time is l: none in a spring-forward gap,
    // two in a fall-back overlap (the earlier one that is after after_ms wins).
    std::optional<int64_t> best;
    for (int64_t probe : {l - 86'400, l, l + 86'400}) {
      int offset = tz->OffsetAt(probe);
      int64_t utc_ms = (l - offset) * 1000;
      if (tz->OffsetAt(l - offset) == offset && utc_ms > after_ms && (!best || utc_ms < *best)) {
        best = utc_ms;
      }
    }
    if (best) return best;
    cursor = *local;
  }
  return std::nullopt;
}

std::optional<int64_t> ScheduleExpression::NextWallClock(int64_t after_ms) const {
  int64_t floor_minute = after_ms >= 0 ? after_ms / 60'000 : -((-after_ms + 59'999) / 60'000);
  Civil c = CivilFromMinutes(floor_minute + 1);
  if (c.year < kMinYear) c = {kMinYear, 1, 1, 0, 0};
  int y = c.year, mo = c.month, d = c.day, h = c.hour, mi = c.minute;
  for (; y <= kMaxYear; ++y, mo = 1, d = 1, h = 0, mi = 0) {
    if (!years_.test(y - kMinYear)) continue;
    for (; mo <= 12; ++mo, d = 1, h = 0, mi = 0) {
      if (!months_.test(mo)) continue;
      int dim = DaysInMonth(y, mo);
      for (; d <= dim; ++d, h = 0, mi = 0) {
        if (!DayMatches(y, mo, d)) continue;
        for (; h < 24; ++h, mi = 0) {
          if (!hours_.test(h)) continue;
          for (; mi < 60; ++mi) {
            if (minutes_.test(mi)) return MinutesOf(y, mo, d, h, mi) * 60'000;
          }
        }
      }
    }
  }
  return std::nullopt;
}

std::optional<int64_t> ScheduleExpression::LastAtOrBefore(int64_t at_ms, int64_t floor_ms,
                                                          int64_t anchor_ms,
                                                          const TimeZone* tz) const {
  if (is_rate()) {
    if (at_ms < anchor_ms) return std::nullopt;
    int64_t tick = anchor_ms + (at_ms - anchor_ms) / period_ms_ * period_ms_;
    return tick > floor_ms ? std::optional<int64_t>(tick) : std::nullopt;
  }
  // Walk forward from the floor; bounded so a long downtime under a
  // every-minute cron costs at most a few hundred milliseconds once.
  std::optional<int64_t> last;
  int64_t cursor = floor_ms;
  for (int i = 0; i < 600'000; ++i) {
    auto next = NextAfter(cursor, anchor_ms, tz);
    if (!next || *next > at_ms) return last;
    last = next;
    cursor = *next;
  }
  // Too many ticks to walk: jump to a day before at_ms and finish from there.
  cursor = std::max(cursor, at_ms - 86'400'000);
  while (auto next = NextAfter(cursor, anchor_ms, tz)) {
    if (*next > at_ms) break;
    last = next;
    cursor = *next;
  }
  return last;
}

}  // namespace gust::schedule
