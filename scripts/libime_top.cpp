// fcitx5's next-word prediction, asked from the command line, so that
// scripts/feature_checks.py engines can score it beside our engine.
//
// Reads one prefix per line (words separated by tabs, possibly none) and prints
// libime's top K for it, tab-separated, one line per prefix (empty when libime
// has nothing: its prev|next table has no entry for the last word).
// libime::Prediction is what fcitx5-chinese-addons calls after each committed
// word: candidates from the table, ranked by the KenLM model's score.
//
// Build (Debian: apt-get install g++ libimecore-dev libfcitx5utils-dev
//         libime-data-language-model):
//   g++ -std=c++17 -O2 -I/usr/include/LibIME -I/usr/include/Fcitx5/Utils \
//       scripts/libime_top.cpp -lIMECore -lFcitx5Utils -o libime_top
// Run: ./libime_top /usr/lib/x86_64-linux-gnu/libime/zh_CN.lm 5 < prefixes.tsv
#include <libime/core/languagemodel.h>
#include <libime/core/prediction.h>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char **argv) {
    if (argc < 3) { std::cerr << "usage: libime_top MODEL.lm K\n"; return 2; }
    libime::LanguageModel model(argv[1]);
    libime::Prediction prediction;
    prediction.setLanguageModel(&model);
    size_t k = std::stoul(argv[2]);
    std::string line;
    while (std::getline(std::cin, line)) {
        std::vector<std::string> words;
        std::stringstream in(line);
        std::string word;
        while (std::getline(in, word, '\t')) if (!word.empty()) words.push_back(word);
        auto top = prediction.predict(words, k);
        for (size_t i = 0; i < top.size(); ++i) std::cout << (i ? "\t" : "") << top[i];
        std::cout << "\n";
    }
    return 0;
}
